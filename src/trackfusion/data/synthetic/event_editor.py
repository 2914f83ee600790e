"""Today's editor, the default corpus's ground truth: it cuts on content events, with noise.

It turns content events into the 20 x 9 track timeline at ``fps``. An event at
recording time ``e`` lands on frame ``ceil((e - start_time) * fps)`` (the recording's
``TimeMap``), delayed by the video's reaction lag (0-2 frames, plus one more frame for
15 % of events). Each event type is followed with a per-video probability in
[0.75, 0.95]; a missed event changes nothing.

- track 0, main footage, always active: at a followed **scene change** the asset
  becomes the one for the new scene's kind (0 main, 4-6 the editor's other sources: a
  cut), the zoom is redrawn around the video's preferred zoom (100-140 %) and the clip
  centre pans toward the scene's saliency centre; during a followed **loud speech
  segment** the zoom punches in by 10-40 % (not a cut: scale only).
- track 1, face cam (asset 1): each followed **speaker turn** (a labelled segment
  whose speaker differs from the last labelled speaker) toggles it on or off; its
  size, corner and crops are the video's layout.
- track 2, text/title (asset 2): on while a followed **text overlay** is shown (from
  overlay start + lag to overlay end + lag), at the top or bottom per video.
- track 3, image insert (asset 3): on during a followed **motion burst** (from burst
  start + lag to burst end + lag), at a per-video position and size.
- track 4, noise: stickers (assets 5-8) at random times, 0.3-1.2 per minute, 1-3 s
  each: the rare spurious cuts that no content explains.
- tracks 5-19 stay inactive. Inactive tracks have all nine parameters zero.

A cut (SPEC section 6) is a change of the active set or of an active track's asset, so
cuts come from scene changes, speaker turns, text on/off, motion on/off and stickers:
irregular intervals that the previous track state cannot time.

Its noiseless twin (``edit_timeline(..., noise=False)``) follows every event, with
exactly its base lag, and makes no stickers: the cuts a predictor that read the content
perfectly would make, hence the ceiling of any content-based cut predictor (missed
events, the extra frame and stickers are not in the content).

Track parameters: ``scale`` in percent of the source size (100 = unscaled; main footage
100-180, face cam 25-45, image 40-80); ``x``, ``y`` the clip centre in pixels of a
1920 x 1080 output frame (0, 0 top left); crops in percent (0-30) of the clip.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trackfusion import schema
from trackfusion.data.synthetic.content import Recording
from trackfusion.data.synthetic.editor import Editor, EditorOutput, EditorStreams

FRAME_WIDTH, FRAME_HEIGHT = schema.FRAME_WIDTH, schema.FRAME_HEIGHT
TRACK_MAIN, TRACK_FACE, TRACK_TEXT, TRACK_IMAGE, TRACK_STICKER = 0, 1, 2, 3, 4  # its layout: schema.TRACK_ASSETS
SCENE_ASSETS = np.array(schema.TRACK_ASSETS[TRACK_MAIN])  # the track-0 asset that shows each scene kind
ASSET_FACE, ASSET_TEXT, ASSET_IMAGE = (schema.TRACK_ASSETS[t][0] for t in (TRACK_FACE, TRACK_TEXT, TRACK_IMAGE))
STICKER_ASSETS = np.array(schema.TRACK_ASSETS[TRACK_STICKER])
FACE_CORNERS = ((1640, 840), (280, 840), (1640, 240), (280, 240))


@dataclass(frozen=True)
class Style:
    """One editor's habits for one video."""

    lag: int  # reaction lag in frames
    follow_scene: float
    follow_turn: float
    follow_text: float
    follow_motion: float
    follow_loud: float
    zoom: float  # preferred main-footage zoom, percent
    punch: float  # zoom added on loud speech, percent
    main_crop: float  # letterbox crop top/bottom of the main footage, percent
    face_on: bool  # face cam shown at the first frame
    face_scale: float
    face_corner: int
    face_crops: tuple[float, float, float, float]
    text_y: float
    image_scale: float
    image_xy: tuple[float, float]
    image_crop: float
    sticker_rate: float  # stickers per second


def sample_style(rng: np.random.Generator) -> Style:
    follow = rng.uniform(0.75, 0.95, 5)
    side = rng.uniform(5, 25)
    return Style(
        lag=int(rng.integers(0, 3)),
        follow_scene=follow[0],
        follow_turn=follow[1],
        follow_text=follow[2],
        follow_motion=follow[3],
        follow_loud=follow[4],
        zoom=float(5 * rng.integers(20, 29)),  # 100..140 in steps of 5
        punch=float(5 * rng.integers(2, 9)),  # 10..40
        main_crop=float(rng.choice([0.0, 0.0, 5.0, 8.0])),
        face_on=bool(rng.random() < 0.6),
        face_scale=float(rng.uniform(25, 45)),
        face_corner=int(rng.integers(0, len(FACE_CORNERS))),
        face_crops=(side, side, float(rng.uniform(0, 15)), float(rng.uniform(0, 15))),
        text_y=float(rng.choice([980.0, 120.0])),
        image_scale=float(rng.uniform(40, 80)),
        image_xy=(float(rng.choice([960.0, 1440.0])), float(rng.choice([540.0, 400.0]))),
        image_crop=float(rng.uniform(0, 10)),
        sticker_rate=float(rng.uniform(0.3, 1.2) / 60.0),
    )


def _interval_mask(starts: np.ndarray, ends: np.ndarray, n: int) -> np.ndarray:
    """(n,) bool: frames inside any [start, end) (clamped to the video)."""
    diff = np.zeros(n + 1, np.int64)
    np.add.at(diff, np.clip(starts, 0, n), 1)
    np.add.at(diff, np.clip(ends, 0, n), -1)
    return np.cumsum(diff[:n]) > 0


def _piecewise(change_frames: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Value per frame of a step function that takes values[k] from change_frames[k] on."""
    return values[np.searchsorted(change_frames, np.arange(n), side="right") - 1]


def edit_timeline(recording: Recording, style: Style, rng: np.random.Generator, *, noise: bool = True,
                  kept: np.ndarray | None = None) -> np.ndarray:
    """The editor's timeline (n_frames, 180) for one video: the rules of the module docstring.

    ``kept`` (T,) bool, the frames an edit that removes plays: the layout is made over them,
    so a speaker turn on a dropped frame, which the edit never plays, toggles nothing (the
    face cam shows at a jump cut what it showed before it). Every draw is made as without
    it, so the other tracks do not move.

    ``noise=False`` is its noiseless twin: every event followed, the lag exactly
    ``style.lag`` (no extra frame, at interval ends too), no stickers (track 4 stays
    inactive). With ``noise=True`` (the default) the draws from `rng` are those of the
    corpus, so the default corpus does not change.
    """
    T, fps, c = recording.n_frames, recording.fps, recording.content
    grid = recording.time_map

    def reactions(times: np.ndarray, p_follow: float) -> tuple[np.ndarray, np.ndarray]:
        if not noise:
            return np.ones(len(times), bool), np.full(len(times), style.lag, np.int64)
        lag = style.lag + (rng.random(len(times)) < 0.15)
        return rng.random(len(times)) < p_follow, lag

    def reacts_at(times: np.ndarray, lag: np.ndarray) -> np.ndarray:
        """Frame on which the editor reacts to events at recording `times`."""
        return grid.first_frames_at(times) + lag

    frames = np.zeros((T, schema.NUM_TRACKS, schema.NUM_TRACK_PARAMS), np.float32)  # (T, 20, 9)
    P = {name: schema.param_index(name) for name in schema.TRACK_PARAMS}

    # track 0: asset = kind of the scene last followed; zoom and pan redrawn at each followed cut
    first_scene = max(int(np.searchsorted(c.scene_starts, recording.start_time, side="right")) - 1, 0)
    later = np.arange(first_scene + 1, len(c.scene_starts))
    follow, lag = reactions(c.scene_starts[later], style.follow_scene)
    cut_scenes = np.concatenate([[first_scene], later[follow]])
    switches = np.concatenate([[0], reacts_at(c.scene_starts[later[follow]], lag[follow])])
    zoom = np.clip(style.zoom + rng.choice([-10, -5, 0, 0, 5, 10, 20], len(cut_scenes)), 100, 180)
    scene_at = _piecewise(switches, cut_scenes, T)  # (T,) scene shown
    base_zoom = _piecewise(switches, zoom, T)
    follow, lag = reactions(c.speech_starts, style.follow_loud)
    loud = follow & c.speech_loud
    punch = _interval_mask(reacts_at(c.speech_starts[loud], lag[loud]), reacts_at(c.speech_ends[loud], lag[loud]), T)
    scale = np.minimum(base_zoom + style.punch * punch, 180.0)
    free = 1.0 - 100.0 / scale  # fraction of the source outside the zoomed view
    sal = c.scene_saliency[scene_at]  # (T, 2)
    main = frames[:, TRACK_MAIN]
    main[:, P["active"]] = 1
    main[:, P["asset_id"]] = SCENE_ASSETS[c.scene_kind[scene_at]]
    main[:, P["scale"]] = scale
    main[:, P["x"]] = FRAME_WIDTH / 2 + (sal[:, 0] - 0.5) * FRAME_WIDTH * free
    main[:, P["y"]] = FRAME_HEIGHT / 2 + (sal[:, 1] - 0.5) * FRAME_HEIGHT * free
    main[:, P["crop_t"]] = main[:, P["crop_b"]] = style.main_crop

    # track 1: face cam toggled by followed speaker turns
    turns = c.speaker_turns
    follow, lag = reactions(turns, style.follow_turn)
    if kept is not None:
        follow = follow & kept[np.clip(grid.first_frames_at(turns), 0, T - 1)]
    toggles = np.sort(reacts_at(turns[follow], lag[follow]))
    n_toggles = np.searchsorted(toggles, np.arange(T), side="right")
    face = frames[:, TRACK_FACE]
    face[:, P["active"]] = (n_toggles + style.face_on) % 2
    face[:, P["asset_id"]] = ASSET_FACE
    face[:, P["scale"]] = style.face_scale
    face[:, P["x"]], face[:, P["y"]] = FACE_CORNERS[style.face_corner]
    face[:, P["crop_l"] : P["crop_b"] + 1] = style.face_crops

    # tracks 2 and 3: on while a followed overlay / motion burst lasts
    for track, asset, starts, ends, p_follow in (
        (TRACK_TEXT, ASSET_TEXT, c.text_starts, c.text_ends, style.follow_text),
        (TRACK_IMAGE, ASSET_IMAGE, c.motion_starts, c.motion_ends, style.follow_motion),
    ):
        follow, lag = reactions(starts, p_follow)
        off_lag = style.lag + (rng.random(len(ends)) < 0.15) if noise else np.full(len(ends), style.lag, np.int64)
        on = _interval_mask(reacts_at(starts[follow], lag[follow]), reacts_at(ends[follow], off_lag[follow]), T)
        tr = frames[:, track]
        tr[:, P["active"]] = on
        tr[:, P["asset_id"]] = asset
    text = frames[:, TRACK_TEXT]
    text[:, P["scale"]], text[:, P["x"]], text[:, P["y"]] = 100.0, FRAME_WIDTH / 2, style.text_y
    image = frames[:, TRACK_IMAGE]
    image[:, P["scale"]] = style.image_scale
    image[:, P["x"]], image[:, P["y"]] = style.image_xy
    image[:, P["crop_l"] : P["crop_b"] + 1] = style.image_crop

    # track 4: stickers at random, the noise no content explains (none without noise)
    if noise:
        n_max = int(T / fps * style.sticker_rate * 3) + 2
        starts = np.cumsum(rng.exponential(1.0 / style.sticker_rate * fps, n_max)).astype(np.int64)
        lengths = rng.integers(fps, 3 * fps + 1, n_max)
        keep = starts < T
        starts, lengths = starts[keep], lengths[keep]
        sticker = frames[:, TRACK_STICKER]
        sticker[:, P["active"]] = _interval_mask(starts, starts + lengths, T)
        which = np.maximum(np.searchsorted(starts, np.arange(T), side="right") - 1, 0)  # (T,) sticker shown
        look = rng.integers(0, len(STICKER_ASSETS), len(starts) + 1)
        place = rng.uniform([20, 200, 150], [50, 1720, 930], (len(starts) + 1, 3))  # scale, x, y
        sticker[:, P["asset_id"]] = STICKER_ASSETS[look[which]]
        sticker[:, P["scale"]], sticker[:, P["x"]], sticker[:, P["y"]] = place[which].T

    frames *= frames[:, :, P["active"] : P["active"] + 1]  # inactive tracks: all parameters zero
    return frames.reshape(T, schema.TRACK_WIDTH)  # (T, 20, 9) -> (T, 180)


class EventEditor(Editor):
    """Today's editor: a style per video, then the timeline and its noiseless twin."""

    def streams(self, seed: int, index: int, recording_rng: np.random.Generator) -> EditorStreams:
        """Where it has always drawn: the recording stream (so the feature files' samples follow
        its draws) and ``[seed, index, 2]`` for the noiseless twin. The default corpus depends on it."""
        return EditorStreams(recording_rng, np.random.default_rng([seed, index, 2]))

    def edit(self, recording: Recording, streams: EditorStreams, kept: np.ndarray | None = None) -> EditorOutput:
        """``kept``: lay out only the frames an edit plays (``edit_timeline``); None, every frame."""
        style = sample_style(streams.timeline)
        return EditorOutput(
            timeline=edit_timeline(recording, style, streams.timeline, kept=kept),
            noiseless=edit_timeline(recording, style, streams.noiseless, noise=False, kept=kept),
        )
