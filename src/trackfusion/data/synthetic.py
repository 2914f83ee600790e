"""The synthetic corpus: recordings with content events and an editor who cuts on them.

``generate_corpus(out_dir, params.synthetic, fps)`` writes exactly the raw contract of
SPEC section 3 (``sequences.npz`` and two feature CSVs per video), so the default
corpus and a user's real data go through the same code; beside it goes one extra file,
``editor_ceiling.json`` (see *The editor*), which no stage needs. Everything is
deterministic from ``synthetic.seed``: video ``i`` draws from
``numpy.random.default_rng([seed, i])`` (its faults from ``[seed, i, 1]``, its
noiseless editor from ``[seed, i, 2]``), so it does not depend on the other videos;
the CLIP prototypes of the scene kinds and the fault plan are corpus-wide draws from
the seed alone. Same params give byte-identical files.

How a video is made
-------------------
1. **Content** is simulated in continuous recording time (seconds), as event lists:
   scenes (boundaries every 6-25 s; each scene has a *kind* in {0, 4, 5, 6}, different
   from the previous scene's, a CLIP scene vector near that kind's prototype, a
   saliency centre, a face count and face geometry), speech segments (1.5-9 s,
   separated by 0.3-3.5 s of silence; 1-3 speakers, a segment keeps the speaker with
   probability 0.45; 15 % of segments are unlabelled, ``speaker_id`` empty; 25 % are
   loud), text overlays (1.5-6 s on, 6-30 s off, a Japanese caption) and motion bursts
   (1-5 s on, 8-35 s off).
2. **Files** sample that content at their own times. Audio every 0.1 s with +-10 ms
   jitter: energy (speech level or room noise), ``audio_is_speaking``,
   ``silence_duration_ms`` (time since the last speech ended), ``speaker_id`` (empty in
   silence and in unlabelled segments), ``text_is_active`` and ``text_word`` (the
   caption, quoted in the CSV because it contains commas). Visual every 5th frame of
   60 fps (1/12 s) from a random phase with +-6 ms jitter, nudged at least 3 ms off the
   0.1 s grid: ``scene_change`` near 1 on the first 1-3 samples of a scene, else near 0;
   ``visual_motion`` high in bursts; saliency empty in 30 % of rows; ``face_count``
   from the scene (dropping to 0 in 5 % of rows), face fields empty where it is 0 and
   in 15 % of the other rows, mouth open while someone speaks; CLIP refreshed every
   10-14 samples (about 1 s) and at each scene start, held in between, with a random
   norm in [6, 14] (never unit length).
3. **The editor** (ground truth the models must learn) turns content events into the
   20 x 9 track timeline at ``fps``. An event at recording time ``e`` lands on frame
   ``ceil((e - start_time) * fps)``, delayed by the video's reaction lag (0-2 frames,
   plus one more frame for 15 % of events). Each event type is followed with a
   per-video probability in [0.75, 0.95]; a missed event changes nothing.

   - track 0, main footage, always active: at a followed **scene change** the asset
     becomes the new scene's kind (0 main, 4-6 the editor's other sources: a cut), the
     zoom is redrawn around the video's preferred zoom (100-140 %) and the clip centre
     pans toward the scene's saliency centre; during a followed **loud speech segment**
     the zoom punches in by 10-40 % (not a cut: scale only).
   - track 1, face cam (asset 1): each followed **speaker turn** (a labelled segment
     whose speaker differs from the last labelled speaker) toggles it on or off; its
     size, corner and crops are the video's layout.
   - track 2, text/title (asset 2): on while a followed **text overlay** is shown
     (from overlay start + lag to overlay end + lag), at the top or bottom per video.
   - track 3, image insert (asset 3): on during a followed **motion burst** (from burst
     start + lag to burst end + lag), at a per-video position and size.
   - track 4, noise: stickers (assets 5-8) at random times, 0.3-1.2 per minute, 1-3 s
     each: the rare spurious cuts that no content explains.
   - tracks 5-19 stay inactive. Inactive tracks have all nine parameters zero.

   A cut (SPEC section 6) is a change of the active set or of an active track's
   asset, so cuts come from scene changes, speaker turns, text on/off, motion
   on/off and stickers: irregular intervals that the previous track state cannot time.
   Cuts are counted as events (``cuts.video_cut_events``: a run of consecutive cut
   frames is one event, at its first frame).

   **The ceiling** (``CEILING_FILE``, ``editor_ceiling.json`` beside ``sequences.npz``):
   the cut events the same editor would make without its noise, i.e. following every
   event, with exactly its base lag, and without stickers (``edit(..., noise=False)``,
   drawn from its own generator so the real timeline is unchanged). They are what a
   predictor that read the content perfectly would predict; scored against the true
   cuts (``cuts.match_events``) they give the ceiling of any content-based cut
   predictor, since missed events, the extra frame and stickers are not in the content.
   Layout:
   ``{"description": str, "tolerance_frames": 5, "videos": {video_id: [frame, ...]}}``,
   frames sorted ints in ``[1, T)``.

Track parameters: ``scale`` in percent of the source size (100 = unscaled; main
footage 100-180, face cam 25-45, image 40-80); ``x``, ``y`` the clip centre in pixels
of a 1920 x 1080 output frame (0, 0 top left); crops in percent (0-30) of the clip.

Faults (SPEC section 7), chosen by a corpus-wide plan and listed in the summary: one
video without a visual file (3+ videos), one without an audio file (4+ videos); with
6+ videos also gaps of 1-10 s, late starts and early ends (3-15 s), irregular sample
times (large jitter, dropped samples), rows out of time order, a duplicated time row
and a few empty or ``inf`` values, each in a few videos.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from trackfusion import cuts, schema
from trackfusion.atomic import atomic_dir, write_json
from trackfusion.io.features import write_audio_csv, write_visual_csv
from trackfusion.io.sequences import TrackData, write_sequences
from trackfusion.params import ParamsError, SyntheticParams, load_params

log = logging.getLogger(__name__)

FRAME_WIDTH, FRAME_HEIGHT = schema.FRAME_WIDTH, schema.FRAME_HEIGHT
AUDIO_STEP_S = 0.1  # real audio tables are sampled every 0.1 s
VISUAL_STEP_S = 5 / 60  # every 5th frame of a 60 fps recording
OFF_GRID_S = 0.003  # visual times stay at least this far from the 0.1 s grid
SCENE_KINDS = np.array([0, 4, 5, 6])  # track-0 asset shown for each scene kind
SCENE_KIND_P = np.array([0.45, 0.2, 0.2, 0.15])
STICKER_ASSETS = np.array([5, 6, 7, 8])
CEILING_FILE = "editor_ceiling.json"  # beside sequences.npz: the cut events of the noiseless editor
CEILING_DESCRIPTION = (
    "Per video, the cut event frames the synthetic editor would make if it followed every content event"
    " with exactly its base lag and no stickers: the ceiling of any content-based cut predictor."
)
TRACK_MAIN, TRACK_FACE, TRACK_TEXT, TRACK_IMAGE, TRACK_STICKER = 0, 1, 2, 3, 4
ASSET_FACE, ASSET_TEXT, ASSET_IMAGE = 1, 2, 3
FACE_CORNERS = ((1640, 840), (280, 840), (1640, 240), (280, 240))
CAPTIONS = (
    "はい、それでは,始めましょう",
    "ここ,めっちゃ大事",
    "まさかの\"神回\",きた",
    "えっ,うそでしょ？",
    "次のステージへ",
    "ボス戦,開始！",
    "ありがとう、ございました,また見てね",
    "チャンネル登録,よろしく",
    "今日のゲームは,これ",
    "やばい,やばい,やばい",
)
FAULT_KINDS = (
    "no_visual_file",
    "no_audio_file",
    "gap",
    "late_start",
    "early_end",
    "irregular_times",
    "unsorted_rows",
    "duplicate_time",
    "nonfinite_values",
)
#: fraction of videos given each fault once there are 6+ videos (at least one each)
FAULT_RATES = {
    "gap": 0.08,
    "late_start": 0.05,
    "early_end": 0.05,
    "irregular_times": 0.15,
    "unsorted_rows": 0.05,
    "duplicate_time": 0.05,
    "nonfinite_values": 0.05,
}


# --- content -------------------------------------------------------------------------
@dataclass(frozen=True)
class Content:
    """One recording's content as event lists in recording seconds."""

    scene_starts: np.ndarray  # (S,) first is 0.0
    scene_kind: np.ndarray  # (S,) index into SCENE_KINDS
    scene_vec: np.ndarray  # (S, 512) unit CLIP direction of each scene
    scene_saliency: np.ndarray  # (S, 2) saliency centre in [0, 1]
    scene_faces: np.ndarray  # (S,) face count
    scene_face_geom: np.ndarray  # (S, 3) face centre x, y and size
    speech_starts: np.ndarray  # (G,)
    speech_ends: np.ndarray  # (G,)
    speech_speaker: np.ndarray  # (G,) speaker index
    speech_labelled: np.ndarray  # (G,) bool: speaker_id written
    speech_level: np.ndarray  # (G,) rms level
    speech_loud: np.ndarray  # (G,) bool
    text_starts: np.ndarray  # (X,)
    text_ends: np.ndarray
    text_caption: np.ndarray  # (X,) index into CAPTIONS
    motion_starts: np.ndarray  # (M,)
    motion_ends: np.ndarray
    motion_level: np.ndarray  # (M,)
    speaker_names: tuple[str, ...]

    @property
    def speaker_turns(self) -> np.ndarray:
        """Start times of labelled segments whose speaker differs from the last labelled one."""
        lab = np.flatnonzero(self.speech_labelled)
        spk = self.speech_speaker[lab]
        return self.speech_starts[lab[1:][spk[1:] != spk[:-1]]]


def _alternating(rng: np.random.Generator, off: tuple[float, float], on: tuple[float, float], horizon: float):
    """On-intervals of an off/on renewal process over [0, horizon): (starts, ends)."""
    n = int(horizon / (off[0] + on[0])) + 2  # enough pairs to pass the horizon; a fixed count of draws
    offs = rng.uniform(*off, n)
    ons = rng.uniform(*on, n)
    starts = np.cumsum(offs) + np.concatenate([[0.0], np.cumsum(ons)[:-1]])
    keep = starts < horizon
    return starts[keep], (starts + ons)[keep]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def clip_prototypes(seed: int) -> np.ndarray:
    """(4, 512) unit CLIP directions of the scene kinds, shared by the whole corpus."""
    return _unit(np.random.default_rng([seed, 0x5CE7E]).standard_normal((len(SCENE_KINDS), schema.CLIP_DIM)))


def simulate_content(rng: np.random.Generator, horizon: float, prototypes: np.ndarray) -> Content:
    gaps = rng.uniform(6.0, 25.0, int(horizon / 6.0) + 2)
    boundaries = np.cumsum(gaps) - gaps[0] + rng.uniform(3.0, 20.0)
    scene_starts = np.concatenate([[0.0], boundaries[boundaries < horizon]])
    n_scenes = len(scene_starts)
    first = rng.choice(len(SCENE_KINDS), p=SCENE_KIND_P)
    kinds = [first]
    for u in rng.random(n_scenes - 1):  # next kind differs from the previous one
        p = SCENE_KIND_P.copy()
        p[kinds[-1]] = 0.0
        kinds.append(int(np.searchsorted(np.cumsum(p / p.sum()), u, side="right")))
    kinds = np.minimum(np.array(kinds), len(SCENE_KINDS) - 1)
    scene_vec = _unit(0.8 * prototypes[kinds] + 0.6 * _unit(rng.standard_normal((n_scenes, schema.CLIP_DIM))))
    face_p = np.where(kinds[:, None] == 0, [[0.1, 0.8, 0.1]], [[0.5, 0.45, 0.05]])
    faces = (rng.random(n_scenes)[:, None] > np.cumsum(face_p, axis=1)).sum(axis=1)
    face_geom = np.stack(
        [rng.uniform(0.65, 0.95, n_scenes), rng.uniform(0.6, 0.9, n_scenes), rng.uniform(0.04, 0.15, n_scenes)], 1
    )

    s_starts, s_ends = _alternating(rng, (0.3, 3.5), (1.5, 9.0), horizon)
    n_seg = len(s_starts)
    n_speakers = int(rng.choice([1, 2, 3], p=[0.15, 0.5, 0.35]))
    change = rng.random(n_seg) >= 0.45
    step = rng.integers(1, max(n_speakers, 2), n_seg) * change
    speakers = (rng.integers(0, n_speakers) + np.cumsum(step)) % n_speakers
    labelled = rng.random(n_seg) < 0.85
    loud = rng.random(n_seg) < 0.25
    level = np.where(loud, rng.uniform(0.3, 0.5, n_seg), rng.uniform(0.06, 0.2, n_seg))
    names = tuple(f"SPEAKER_{i:02d}" for i in rng.permutation(6)[:n_speakers])

    t_starts, t_ends = _alternating(rng, (6.0, 30.0), (1.5, 6.0), horizon)
    m_starts, m_ends = _alternating(rng, (8.0, 35.0), (1.0, 5.0), horizon)
    return Content(
        scene_starts=scene_starts,
        scene_kind=kinds,
        scene_vec=scene_vec,
        scene_saliency=rng.uniform(0.2, 0.8, (n_scenes, 2)),
        scene_faces=faces,
        scene_face_geom=face_geom,
        speech_starts=s_starts,
        speech_ends=s_ends,
        speech_speaker=speakers,
        speech_labelled=labelled,
        speech_level=level,
        speech_loud=loud,
        text_starts=t_starts,
        text_ends=t_ends,
        text_caption=rng.integers(0, len(CAPTIONS), len(t_starts)),
        motion_starts=m_starts,
        motion_ends=m_ends,
        motion_level=rng.uniform(0.6, 0.9, len(m_starts)),
        speaker_names=names,
    )


def _take(values: np.ndarray, index: np.ndarray, fill: Any) -> np.ndarray:
    """values[index] where index >= 0, else `fill` (also when `values` is empty)."""
    if len(values) == 0:
        return np.full(len(index), fill)
    return np.where(index >= 0, values[np.maximum(index, 0)], fill)


def _interval_index(starts: np.ndarray, ends: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index of the interval containing each time, -1 outside all (intervals sorted, disjoint)."""
    i = np.searchsorted(starts, t, side="right") - 1
    inside = (i >= 0) & (t < ends[np.maximum(i, 0)]) if len(starts) else np.zeros(len(t), bool)
    return np.where(inside, i, -1)


# --- editor --------------------------------------------------------------------------
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


def _event_frames(times: np.ndarray, start_time: float, fps: int, lag: np.ndarray) -> np.ndarray:
    """Frame on which the editor reacts to events at recording `times`."""
    return np.ceil((times - start_time) * fps - 1e-6).astype(np.int64) + lag


def _interval_mask(starts: np.ndarray, ends: np.ndarray, n: int) -> np.ndarray:
    """(n,) bool: frames inside any [start, end) (clamped to the video)."""
    diff = np.zeros(n + 1, np.int64)
    np.add.at(diff, np.clip(starts, 0, n), 1)
    np.add.at(diff, np.clip(ends, 0, n), -1)
    return np.cumsum(diff[:n]) > 0


def _piecewise(change_frames: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Value per frame of a step function that takes values[k] from change_frames[k] on."""
    return values[np.searchsorted(change_frames, np.arange(n), side="right") - 1]


def edit(
    content: Content,
    style: Style,
    rng: np.random.Generator,
    start_time: float,
    n_frames: int,
    fps: int,
    *,
    noise: bool = True,
) -> np.ndarray:
    """The editor's timeline (n_frames, 180) for one video: the rules of the module docstring.

    ``noise=False`` is the same editor without its noise: every event is followed, the
    lag is exactly ``style.lag`` (no extra frame, at interval ends too) and there are no
    stickers (track 4 stays inactive). Its cuts are the ceiling of a content-based
    predictor. With ``noise=True`` (the default) the draws from `rng` are those of the
    corpus, so the default corpus does not change.
    """
    T = n_frames

    def reactions(times: np.ndarray, p_follow: float) -> tuple[np.ndarray, np.ndarray]:
        if not noise:
            return np.ones(len(times), bool), np.full(len(times), style.lag, np.int64)
        lag = style.lag + (rng.random(len(times)) < 0.15)
        return rng.random(len(times)) < p_follow, lag

    frames = np.zeros((T, schema.NUM_TRACKS, schema.NUM_TRACK_PARAMS), np.float32)  # (T, 20, 9)
    P = {name: schema.param_index(name) for name in schema.TRACK_PARAMS}

    # track 0: asset = kind of the scene last followed; zoom and pan redrawn at each followed cut
    c = content
    first_scene = max(int(np.searchsorted(c.scene_starts, start_time, side="right")) - 1, 0)
    later = np.arange(first_scene + 1, len(c.scene_starts))
    follow, lag = reactions(c.scene_starts[later], style.follow_scene)
    cut_scenes = np.concatenate([[first_scene], later[follow]])
    switches = np.concatenate([[0], _event_frames(c.scene_starts[later[follow]], start_time, fps, lag[follow])])
    zoom = np.clip(style.zoom + rng.choice([-10, -5, 0, 0, 5, 10, 20], len(cut_scenes)), 100, 180)
    scene_at = _piecewise(switches, cut_scenes, T)  # (T,) scene shown
    base_zoom = _piecewise(switches, zoom, T)
    follow, lag = reactions(c.speech_starts, style.follow_loud)
    loud = follow & c.speech_loud
    punch = _interval_mask(
        _event_frames(c.speech_starts[loud], start_time, fps, lag[loud]),
        _event_frames(c.speech_ends[loud], start_time, fps, lag[loud]),
        T,
    )
    scale = np.minimum(base_zoom + style.punch * punch, 180.0)
    free = 1.0 - 100.0 / scale  # fraction of the source outside the zoomed view
    sal = c.scene_saliency[scene_at]  # (T, 2)
    main = frames[:, TRACK_MAIN]
    main[:, P["active"]] = 1
    main[:, P["asset_id"]] = SCENE_KINDS[c.scene_kind[scene_at]]
    main[:, P["scale"]] = scale
    main[:, P["x"]] = FRAME_WIDTH / 2 + (sal[:, 0] - 0.5) * FRAME_WIDTH * free
    main[:, P["y"]] = FRAME_HEIGHT / 2 + (sal[:, 1] - 0.5) * FRAME_HEIGHT * free
    main[:, P["crop_t"]] = main[:, P["crop_b"]] = style.main_crop

    # track 1: face cam toggled by followed speaker turns
    turns = c.speaker_turns
    follow, lag = reactions(turns, style.follow_turn)
    toggles = np.sort(_event_frames(turns[follow], start_time, fps, lag[follow]))
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
        on = _interval_mask(
            _event_frames(starts[follow], start_time, fps, lag[follow]),
            _event_frames(ends[follow], start_time, fps, off_lag[follow]),
            T,
        )
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


# --- files ---------------------------------------------------------------------------
def _audio_times(rng: np.random.Generator, horizon: float, irregular: bool) -> np.ndarray:
    t = np.arange(int(horizon / AUDIO_STEP_S) + 1) * AUDIO_STEP_S
    jitter = 0.04 if irregular else 0.01
    t = t + np.clip(rng.normal(0, jitter / 3, len(t)), -jitter, jitter)
    t[0] = abs(t[0])
    return t


def _visual_times(rng: np.random.Generator, horizon: float, irregular: bool) -> np.ndarray:
    n = int(horizon / VISUAL_STEP_S) + 1
    jitter = 0.02 if irregular else 0.006
    t = rng.uniform(0.005, 0.075) + np.arange(n) * VISUAL_STEP_S
    t = t + np.clip(rng.normal(0, jitter / 3, n), -jitter, jitter)
    d = t / AUDIO_STEP_S - np.round(t / AUDIO_STEP_S)  # distance to the 0.1 s grid, in steps
    near = np.abs(d) < OFF_GRID_S / AUDIO_STEP_S
    t[near] += (np.where(d[near] >= 0, 1.0, -1.0) * OFF_GRID_S / AUDIO_STEP_S - d[near]) * AUDIO_STEP_S
    return t


def audio_columns(c: Content, t: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    """Audio table columns at sample times `t` (name -> values)."""
    seg = _interval_index(c.speech_starts, c.speech_ends, t)
    speaking = seg >= 0
    n = len(t)
    energy = np.where(
        speaking, _take(c.speech_level, seg, 0.0) * (1 + 0.25 * rng.standard_normal(n)), rng.uniform(0.003, 0.015, n)
    )
    last_end = np.searchsorted(c.speech_ends, t, side="right") - 1
    since = t - _take(c.speech_ends, last_end, 0.0)
    label = speaking & _take(c.speech_labelled, seg, False)
    names = np.array(("",) + c.speaker_names, dtype=object)
    txt = _interval_index(c.text_starts, c.text_ends, t)
    captions = np.array(("",) + CAPTIONS, dtype=object)
    return {
        "audio_energy_rms": np.maximum(energy, 0.0),
        "audio_is_speaking": speaking.astype(np.float64),
        "silence_duration_ms": np.where(speaking, 0.0, np.round(since * 1000)),
        schema.SPEAKER_ID: names[np.where(label, _take(c.speech_speaker, seg, -1) + 1, 0)],
        "text_is_active": (txt >= 0).astype(np.float64),
        schema.TEXT_WORD: captions[_take(c.text_caption, txt, -1) + 1],
    }


def visual_columns(
    c: Content, t: np.ndarray, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Visual scalars at times `t`, plus CLIP holds: (scalars, hold per row (N,), hold vectors (H, 512))."""
    n = len(t)
    scene = np.searchsorted(c.scene_starts, t, side="right") - 1
    first = np.searchsorted(t, c.scene_starts)  # first sample of each scene
    rank = np.arange(n) - first[scene]
    n_spike = rng.integers(1, 4, len(c.scene_starts))
    spike = (scene > 0) & (rank < n_spike[scene])
    scene_change = np.where(
        spike, 0.96 - 0.25 * rank + rng.normal(0, 0.02, n), np.abs(rng.normal(0, 0.03, n)) + 0.01
    )
    burst = _interval_index(c.motion_starts, c.motion_ends, t)
    motion = np.where(burst >= 0, _take(c.motion_level, burst, 0.0), rng.uniform(0.05, 0.2, len(c.scene_starts))[scene])
    motion = np.maximum(motion + rng.normal(0, 0.04, n), 0.0)
    saliency = np.clip(c.scene_saliency[scene] + rng.normal(0, 0.03, (n, 2)), 0, 1)
    saliency[rng.random(n) < 0.3] = np.nan
    faces = c.scene_faces[scene] * (rng.random(n) >= 0.05)
    speaking = _interval_index(c.speech_starts, c.speech_ends, t) >= 0
    geom = c.scene_face_geom[scene] + rng.normal(0, 0.01, (n, 3))
    mouth = np.where(speaking, rng.uniform(0.3, 0.8, n), rng.uniform(0.0, 0.1, n))
    face = np.column_stack([geom, mouth, rng.uniform(0.0, 0.4, n)])  # (n, 5) in schema.FACE_FIELDS order
    face[(faces == 0) | (rng.random(n) < 0.15)] = np.nan
    scalars = {
        "scene_change": np.clip(scene_change, 0, 1),
        "visual_motion": motion,
        "saliency_x": saliency[:, 0],
        "saliency_y": saliency[:, 1],
        schema.FACE_COUNT: faces.astype(np.float64),
        **{name: face[:, i] for i, name in enumerate(schema.FACE_FIELDS)},
    }
    # CLIP: refreshed at each scene start and every 10-14 samples, held in between
    refresh = np.zeros(n, bool)
    refresh[np.cumsum(rng.integers(10, 15, n // 10 + 1))[: n // 10 + 1].clip(max=n - 1)] = True
    refresh[first[first < n]] = True
    refresh[0] = True
    hold = np.cumsum(refresh) - 1  # (n,) hold index per row
    hold_scene = scene[refresh]
    vecs = _unit(c.scene_vec[hold_scene] + 0.12 * _unit(rng.standard_normal((len(hold_scene), schema.CLIP_DIM))))
    vecs *= rng.uniform(6.0, 14.0, (len(hold_scene), 1))  # CLIP image embeddings are not unit length
    return scalars, hold, vecs


@dataclass
class _RowPlan:
    """Which rows of a clean table a faulty file keeps, in which order, and which cells break."""

    keep: np.ndarray  # (N,) bool
    order: np.ndarray | None = None  # row indices (into the kept rows) in file order
    bad_cells: tuple[tuple[int, str, float], ...] = ()  # (kept row, column, NaN or inf)


def _plan_rows(
    t: np.ndarray, faults: list[str], frng: np.random.Generator, start: float, end: float, columns: tuple[str, ...]
) -> tuple[_RowPlan, list[dict[str, Any]]]:
    keep = np.ones(len(t), bool)
    details: list[dict[str, Any]] = []
    span = end - start
    if "late_start" in faults:
        d = float(min(frng.uniform(3, 15), 0.3 * span))
        keep &= t >= start + d
        details.append({"kind": "late_start", "first_time_s": round(start + d, 3)})
    if "early_end" in faults:
        d = float(min(frng.uniform(3, 15), 0.3 * span))
        keep &= t <= end - d
        details.append({"kind": "early_end", "last_time_s": round(end - d, 3)})
    if "gap" in faults:
        for _ in range(int(frng.integers(1, 3))):
            length = float(min(frng.uniform(1.0, 10.0), max(0.15 * span, 1.2)))
            g0 = float(frng.uniform(start + 0.2 * span, start + 0.7 * span))
            keep &= ~((t >= g0) & (t < g0 + length))
            details.append({"kind": "gap", "from_s": round(g0, 3), "to_s": round(g0 + length, 3)})
    if "irregular_times" in faults:
        keep &= frng.random(len(t)) >= 0.03  # dropped samples on top of the large jitter
        details.append({"kind": "irregular_times"})
    n = int(keep.sum())
    order = np.arange(n)
    if "unsorted_rows" in faults and n > 20:
        rows = frng.choice(np.arange(5, n - 5, 3), size=min(3, (n - 10) // 3), replace=False)
        order[rows], order[rows + 1] = order[rows + 1], order[rows].copy()
        details.append({"kind": "unsorted_rows", "rows": sorted(int(r) for r in rows)})
    if "duplicate_time" in faults and n > 2:
        r = int(frng.integers(1, n - 1))
        order = np.insert(order, int(np.flatnonzero(order == r)[0]) + 1, r)
        details.append({"kind": "duplicate_time", "time_s": round(float(t[keep][r]), 4)})
    bad: list[tuple[int, str, float]] = []
    if "nonfinite_values" in faults and n > 0:
        for _ in range(int(frng.integers(2, 5))):
            row, col = int(frng.integers(0, n)), columns[int(frng.integers(0, len(columns)))]
            bad.append((row, col, np.inf if frng.random() < 0.5 else np.nan))
        cells = [{"row": r, "column": col, "value": str(v)} for r, col, v in bad]  # row: sample index before reordering
        details.append({"kind": "nonfinite_values", "cells": cells})
    return _RowPlan(keep, order, tuple(bad)), details


def _apply_plan(values: dict[str, Any], plan: _RowPlan) -> dict[str, Any]:
    out = {}
    for name, v in values.items():
        v = np.asarray(v)[plan.keep]
        if v.dtype.kind == "f":
            v = v.copy()
            for row, col, bad in plan.bad_cells:
                if col == name:
                    v[row] = bad
        out[name] = v[plan.order]
    return out


# --- corpus --------------------------------------------------------------------------
def video_id(rng: np.random.Generator, index: int) -> str:
    """A recording file stem like 'bandicam 2025-03-11 22-57-01-575'; unique per index."""
    day = datetime(2024, 9, 1) + timedelta(days=2 * index + int(rng.integers(0, 2)))
    stamp = day + timedelta(seconds=int(rng.integers(8 * 3600, 86400)))
    if rng.random() < 0.75:
        return f"bandicam {stamp:%Y-%m-%d %H-%M-%S}-{int(rng.integers(0, 1000)):03d}"
    return f"{stamp:%Y-%m-%d %H-%M-%S}"


def plan_faults(seed: int, num_videos: int) -> dict[int, list[str]]:
    """Fault kinds per video index, a deterministic corpus-wide plan (modest rates)."""
    rng = np.random.default_rng([seed, 0xFA17])
    plan: dict[int, list[str]] = {i: [] for i in range(num_videos)}
    order = rng.permutation(num_videos)
    if num_videos >= 3:
        plan[int(order[0])].append("no_visual_file")
    if num_videos >= 4:
        plan[int(order[1])].append("no_audio_file")
    if num_videos >= 6:
        for kind, rate in FAULT_RATES.items():  # spread: videos with the fewest faults first, ties at random
            tie = rng.random(num_videos)
            chosen = sorted(range(num_videos), key=lambda i: (len(plan[i]), tie[i]))
            for i in chosen[: max(1, round(rate * num_videos))]:
                plan[i].append(kind)
    return plan


def generate_video(
    seed: int, index: int, params: SyntheticParams, fps: int, prototypes: np.ndarray, faults: list[str], out: Path
) -> tuple[str, float, np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Write one video's feature files.

    Return (video_id, start_time, track (T, 180), ceiling, fault details); ``ceiling`` is
    the cut events (frames) of the same editor without noise (``edit(..., noise=False)``).
    """
    rng = np.random.default_rng([seed, index])
    frng = np.random.default_rng([seed, index, 1])  # faults draw apart, so content does not depend on them
    vid = video_id(rng, index)
    n_frames = max(int(round(rng.uniform(params.min_duration_s, params.max_duration_s) * fps)), 2)
    start = int(rng.integers(0, 3 * fps + 1)) / fps  # recording time of the first frame
    end = start + (n_frames - 1) / fps
    horizon = end + rng.uniform(0.5, 3.0)  # the recording runs a little past the edit
    content = simulate_content(rng, horizon, prototypes)
    style = sample_style(rng)
    track = edit(content, style, rng, start, n_frames, fps)
    # the noiseless editor draws from its own generator, so the real timeline's stream is untouched
    ceiling = cuts.video_cut_events(
        edit(content, style, np.random.default_rng([seed, index, 2]), start, n_frames, fps, noise=False)
    )

    # which file each file-level fault hits: visual when there is no audio, else either
    has_audio, has_visual = "no_audio_file" not in faults, "no_visual_file" not in faults
    row_faults = [f for f in faults if f not in ("no_audio_file", "no_visual_file")]
    target = {
        f: "visual" if not has_audio else "audio" if not has_visual else ("audio", "visual")[int(frng.integers(0, 2))]
        for f in row_faults
    }
    details: list[dict[str, Any]] = [
        {"kind": f, "video_id": vid, "file": f.split("_")[1]} for f in faults if f.startswith("no_")
    ]

    files_dir = out / schema.FEATURES_DIR
    # both tables are drawn even when a file is missing, so the rng stream is the same
    ta = _audio_times(rng, horizon, "irregular_times" in faults and target["irregular_times"] == "audio")
    audio = {schema.TIME: ta, **audio_columns(content, ta, rng)}
    tv = _visual_times(rng, horizon, "irregular_times" in faults and target["irregular_times"] == "visual")
    visual, hold, vecs = visual_columns(content, tv, rng)
    visual = {schema.TIME: tv, **visual}
    for modality, table, present, floats in (
        ("audio", audio, has_audio, ("audio_energy_rms", "silence_duration_ms")),
        ("visual", visual, has_visual, ("scene_change", "visual_motion", "face_size")),
    ):
        if not present:
            continue
        mine = [f for f, m in target.items() if m == modality]
        plan, found = _plan_rows(table[schema.TIME], mine, frng, start, end, floats)
        details += [{**d, "video_id": vid, "file": modality} for d in found]
        if modality == "audio":
            write_audio_csv(files_dir / schema.audio_file_name(vid), _apply_plan(audio, plan))
        else:
            rows = _apply_plan({**visual, "_hold": hold}, plan)
            rows_hold = rows.pop("_hold")
            write_visual_csv(files_dir / schema.visual_file_name(vid), rows, rows_hold, vecs)
    return vid, start, track, ceiling, details


def generate_corpus(out_dir: str | Path, params: SyntheticParams, fps: int = 10) -> dict[str, Any]:
    """Write the synthetic corpus (SPEC section 3 layout) to `out_dir`, atomically; return a summary.

    Summary: ``videos``, ``frames``, ``seconds`` (of track), ``fps``, ``seed``,
    ``video_ids``, ``cuts`` (true cut events in all timelines), ``ceiling_cuts`` (cut
    events of the noiseless editor, all videos, as written to ``CEILING_FILE``), ``faults`` (kind -> video ids,
    every kind present, empty lists included) and ``fault_details`` (one dict per injected
    fault: kind, video_id, file and where).
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    prototypes = clip_prototypes(params.seed)
    plan = plan_faults(params.seed, params.num_videos)
    videos: list[tuple[str, float, np.ndarray]] = []
    details: list[dict[str, Any]] = []
    ceilings: dict[str, list[int]] = {}
    with atomic_dir(out_dir) as tmp:
        (tmp / schema.FEATURES_DIR).mkdir()
        for i in range(params.num_videos):
            vid, start, track, ceiling, found = generate_video(params.seed, i, params, fps, prototypes, plan[i], tmp)
            videos.append(TrackData(vid, start, track))
            ceilings[vid] = [int(f) for f in ceiling]
            details += found
        write_sequences(tmp / schema.SEQUENCES_FILE, videos)
        write_json(
            tmp / CEILING_FILE,
            {
                "description": CEILING_DESCRIPTION,
                "tolerance_frames": cuts.TOLERANCE,
                "videos": ceilings,
            },
        )
    faults: dict[str, list[str]] = {kind: [] for kind in FAULT_KINDS}
    for d in details:
        if d["video_id"] not in faults[d["kind"]]:
            faults[d["kind"]].append(d["video_id"])
    frames = sum(len(v.frames) for v in videos)
    summary = {
        "videos": len(videos),
        "frames": frames,
        "seconds": frames / fps,
        "fps": fps,
        "seed": params.seed,
        "video_ids": [v.video_id for v in videos],
        "cuts": int(sum(len(cuts.video_cut_events(v.frames)) for v in videos)),
        "ceiling_cuts": int(sum(len(c) for c in ceilings.values())),
        "faults": faults,
        "fault_details": details,
    }
    log.info(
        "wrote %d synthetic videos (%.1f min of track, %d cuts, %d without editor noise) to %s in %.2f s; faults: %s",
        summary["videos"],
        summary["seconds"] / 60,
        summary["cuts"],
        summary["ceiling_cuts"],
        out_dir,
        time.perf_counter() - t0,
        ", ".join(f"{k} {len(v)}" for k, v in faults.items() if v) or "none",
    )
    return summary


# --- command line --------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="params file; reads synthetic.* and data.fps")
    parser.add_argument("--out", default="data/synthetic", help="corpus folder to write (replaced atomically)")
    parser.add_argument("--summary", default=None, help="also write the summary (faults per video) as JSON here")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    summary = generate_corpus(args.out, params.synthetic, fps=params.data.fps)
    if args.summary:
        write_json(args.summary, summary)
    print(json.dumps({k: v for k, v in summary.items() if k != "fault_details"}, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trackfusion.data.synthetic", description="Write the synthetic corpus.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except ParamsError as exc:
        parser.exit(2, f"{parser.prog}: {exc}\n")


if __name__ == "__main__":
    raise SystemExit(main())
