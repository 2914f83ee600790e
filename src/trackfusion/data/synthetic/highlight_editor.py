"""The highlight editor, the default corpus's ground truth: it keeps the stretches worth watching,
then lays out what it keeps as today's editor does.

What it keeps is decided over the whole recording, as a highlight editor does, on an
*interest* per frame read from the content events (``interest``):

- speech counts (``SPEECH``), more the louder it is (its rms level), and loud speech most;
- a motion burst counts with its level (``MOTION``);
- the first ``SCENE_OPENING_S`` seconds of a new scene count (``SCENE_OPENING``);
- a loading or menu screen (scene kind ``MENU_KIND``, which only CLIP shows: its face
  counts, motion and saliency are drawn as any other kind's) counts for nothing, whatever
  happens in it; so do long silences with little motion.

The interest is smoothed over ``SMOOTH_S`` seconds (centred: the editor has seen what
follows). The video keeps a share of its frames drawn per video (``KEEP_SHARE``): the
most interesting ones, which makes the selection relative to the video (a stretch that
stands out in a calm recording is ordinary in a loud one), through
``trackfusion.selection.decode_to_length`` with the editor's own margins, minimum clip
and minimum gap (``EDITOR_DECODING``: a lead-in before each kept stretch, a tail after).

Noise (the real edit, not its noiseless twin): each kept stretch's two edges move by up to
``EDGE_JITTER_S``; a few kept stretches are dropped (``DROP_P`` each) and a few dull ones
kept (``DULL_PER_MIN`` per minute of recording, 2-5 s each), then the clip and gap minimums
are applied again. Its noiseless twin (the selection ceiling) keeps exactly what the
decoding keeps. Every predictor is asked for the real edit's length, which the noise moves
from the share; the twin asked for that length too is ``noiseless_kept_at_length``.

The layout: today's editor (``event_editor``) lays out the kept frames, its noise
included: it reacts to what the edit plays, so a speaker turn on a dropped frame toggles
no face cam (its noiseless twin, the layout ceiling, lays out the same kept frames);
dropped frames hold zeros (the sequences.npz contract). Its streams are today's editor's (so the content, the
layout and the feature files draw as they always did), plus one of its own for the
selection (``[seed, i, 3]``: the share, then the noise).
"""
from __future__ import annotations

import copy

import numpy as np

from trackfusion import selection
from trackfusion.data.synthetic.content import Recording
from trackfusion.data.synthetic.editor import Editor, EditorOutput, EditorStreams
from trackfusion.data.synthetic.files import interval_index
from trackfusion.data.synthetic.event_editor import EventEditor

MENU_KIND = 3  # the scene kind that is a loading or menu screen
SPEECH = 0.35  # interest of speech, plus its rms level (0.06-0.2, loud 0.3-0.5) times LEVEL
LEVEL = 1.5
MOTION = 0.8  # interest of a motion burst per unit of its level (0.6-0.9)
SCENE_OPENING = 0.6
SCENE_OPENING_S = 3.0
SMOOTH_S = 2.0
KEEP_SHARE = (0.25, 0.6)
EDITOR_DECODING = selection.SelectionDecoding(margin_before_s=0.5, margin_after_s=1.0, min_clip_s=2.0, min_gap_s=1.5)
EDGE_JITTER_S = 0.3
DROP_P = 0.08
DULL_PER_MIN = 0.5


def interest(recording: Recording) -> np.ndarray:
    """(T,) float64: how much each frame is worth keeping (module docstring), smoothed."""
    c, fps = recording.content, recording.fps
    t = recording.time_map.frame_times(recording.n_frames)
    seg = interval_index(c.speech_starts, c.speech_ends, t)
    value = np.where(seg >= 0, SPEECH + LEVEL * c.speech_level[np.maximum(seg, 0)] if len(c.speech_level) else 0.0, 0.0)
    burst = interval_index(c.motion_starts, c.motion_ends, t)
    value = value + np.where(burst >= 0, MOTION * c.motion_level[np.maximum(burst, 0)] if len(c.motion_level) else 0.0,
                             0.0)
    scene = np.searchsorted(c.scene_starts, t, side="right") - 1
    opening = (scene > 0) & (t - c.scene_starts[scene] < SCENE_OPENING_S)
    value = value + SCENE_OPENING * opening
    value[c.scene_kind[scene] == MENU_KIND] = 0.0
    return selection.smooth(value, int(round(SMOOTH_S * fps)))


def select(recording: Recording, rng: np.random.Generator, *, noise: bool = True) -> np.ndarray:
    """(T,) bool kept flags. ``noise=False`` is the noiseless twin; both draw the share first from
    ``rng``, so a twin made from a fresh copy of the same stream keeps the same share."""
    fps, T = recording.fps, recording.n_frames
    share = rng.uniform(*KEEP_SHARE)
    kept = selection.decode_to_length(interest(recording), fps, EDITOR_DECODING, int(round(share * T)))
    if not noise:
        return kept
    segs = selection.segments(kept)
    jitter = int(round(EDGE_JITTER_S * fps))
    segs = segs + rng.integers(-jitter, jitter + 1, segs.shape)
    segs = segs[rng.random(len(segs)) >= DROP_P]
    n_dull = rng.poisson(DULL_PER_MIN * T / fps / 60.0)
    starts = rng.integers(0, T, n_dull)
    dull = np.stack([starts, starts + rng.integers(2 * fps, 5 * fps + 1, n_dull)], 1)
    segs = np.clip(np.concatenate([segs.reshape(-1, 2), dull]), 0, T)
    noisy = selection.flags(np.stack([segs[:, 0], np.maximum(segs[:, 0], segs[:, 1])], 1), T)
    shaped = selection.shape(noisy, fps, selection.SelectionDecoding(
        min_clip_s=EDITOR_DECODING.min_clip_s, min_gap_s=EDITOR_DECODING.min_gap_s))
    return shaped if shaped.any() else kept


class HighlightEditor(Editor):
    """Keeps the highlights (module docstring); lays them out as ``layout`` does."""

    tag = 3

    def __init__(self, layout: Editor | None = None):
        self.layout = layout or EventEditor()

    def streams(self, seed: int, index: int, recording_rng: np.random.Generator) -> EditorStreams:
        laid = self.layout.streams(seed, index, recording_rng)
        return EditorStreams(laid.timeline, laid.noiseless, selection=np.random.default_rng([seed, index, self.tag]))

    def edit(self, recording: Recording, streams: EditorStreams, kept: np.ndarray | None = None) -> EditorOutput:
        if kept is not None:
            raise ValueError("the highlight editor decides what it keeps itself: pass no kept flags")
        if streams.selection is None:
            raise ValueError("the highlight editor needs a selection stream (HighlightEditor.streams)")
        twin = copy.deepcopy(streams.selection)  # the same share, no noise
        kept = select(recording, streams.selection)
        noiseless_kept = select(recording, twin, noise=False)
        at_length = selection.decode_to_length(interest(recording), recording.fps, EDITOR_DECODING, int(kept.sum()))
        laid = self.layout.edit(recording, streams, kept=kept)  # the layout of the frames the edit plays
        timeline = laid.timeline * kept[:, None]  # a dropped frame holds zeros (the contract)
        return EditorOutput(timeline=timeline.astype(np.float32), noiseless=laid.noiseless, kept=kept,
                            noiseless_kept=noiseless_kept, noiseless_kept_at_length=at_length)
