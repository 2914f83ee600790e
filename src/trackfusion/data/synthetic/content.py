"""The simulated recording: what happens in it, as event lists in recording seconds.

Scenes (boundaries every 6-25 s; each scene has one of four *kinds*, different from
the previous scene's, a CLIP scene vector near that kind's prototype, a saliency
centre, a face count and face geometry), speech segments (1.5-9 s, separated by
0.3-3.5 s of silence; 1-3 speakers, a segment keeps the speaker with probability 0.45;
15 % of segments are unlabelled, ``speaker_id`` empty; 25 % are loud), text overlays
(1.5-6 s on, 6-30 s off, a Japanese caption) and motion bursts (1-5 s on, 8-35 s off).
The feature files (``files``) sample it; an editor (``editor``) cuts on it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from trackfusion import schema
from trackfusion.params import SyntheticParams
from trackfusion.timemap import TimeMap

SCENE_KIND_P = np.array([0.45, 0.2, 0.2, 0.15])  # how often each of the four scene kinds is drawn
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


@dataclass(frozen=True)
class Content:
    """One recording's content as event lists in recording seconds."""

    scene_starts: np.ndarray  # (S,) first is 0.0
    scene_kind: np.ndarray  # (S,) 0-3, index into SCENE_KIND_P
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


@dataclass(frozen=True)
class Recording:
    """One simulated recording: its id, the frame grid its timeline is made on, and its content."""

    video_id: str
    fps: int
    start_time: float  # recording time of the timeline's first frame
    n_frames: int
    horizon: float  # the recording's end, a little past the last frame
    content: Content

    @property
    def time_map(self) -> TimeMap:
        return TimeMap(self.fps, self.start_time)

    @property
    def end_time(self) -> float:
        """Recording time of the last frame."""
        return float(self.time_map.frame_times(self.n_frames)[-1])


def _alternating(rng: np.random.Generator, off: tuple[float, float], on: tuple[float, float], horizon: float):
    """On-intervals of an off/on renewal process over [0, horizon): (starts, ends)."""
    n = int(horizon / (off[0] + on[0])) + 2  # enough pairs to pass the horizon; a fixed count of draws
    offs = rng.uniform(*off, n)
    ons = rng.uniform(*on, n)
    starts = np.cumsum(offs) + np.concatenate([[0.0], np.cumsum(ons)[:-1]])
    keep = starts < horizon
    return starts[keep], (starts + ons)[keep]


def unit(v: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (in float64; ``embeddings.l2_normalize`` is the corpus's, on torch)."""
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def clip_prototypes(seed: int) -> np.ndarray:
    """(4, 512) unit CLIP directions of the scene kinds, shared by the whole corpus."""
    return unit(np.random.default_rng([seed, 0x5CE7E]).standard_normal((len(SCENE_KIND_P), schema.CLIP_DIM)))


def video_id(rng: np.random.Generator, index: int) -> str:
    """A recording file stem like 'bandicam 2025-03-11 22-57-01-575'; unique per index."""
    day = datetime(2024, 9, 1) + timedelta(days=2 * index + int(rng.integers(0, 2)))
    stamp = day + timedelta(seconds=int(rng.integers(8 * 3600, 86400)))
    if rng.random() < 0.75:
        return f"bandicam {stamp:%Y-%m-%d %H-%M-%S}-{int(rng.integers(0, 1000)):03d}"
    return f"{stamp:%Y-%m-%d %H-%M-%S}"


def simulate_recording(
    rng: np.random.Generator, index: int, params: SyntheticParams, fps: int, prototypes: np.ndarray
) -> Recording:
    """Video ``index``'s recording, drawn from the start of its recording stream (see the package docstring)."""
    vid = video_id(rng, index)
    n_frames = max(int(round(rng.uniform(params.min_duration_s, params.max_duration_s) * fps)), 2)
    start = int(rng.integers(0, 3 * fps + 1)) / fps  # on the recording's own 1/fps ticks
    end = float(TimeMap(fps, start).frame_times(n_frames)[-1])
    horizon = end + rng.uniform(0.5, 3.0)  # the recording runs a little past the edit
    return Recording(vid, fps, start, n_frames, horizon, simulate_content(rng, horizon, prototypes))


def simulate_content(rng: np.random.Generator, horizon: float, prototypes: np.ndarray) -> Content:
    """The events of a recording that lasts ``horizon`` seconds."""
    gaps = rng.uniform(6.0, 25.0, int(horizon / 6.0) + 2)
    boundaries = np.cumsum(gaps) - gaps[0] + rng.uniform(3.0, 20.0)
    scene_starts = np.concatenate([[0.0], boundaries[boundaries < horizon]])
    n_scenes = len(scene_starts)
    first = rng.choice(len(SCENE_KIND_P), p=SCENE_KIND_P)
    kinds = [first]
    for u in rng.random(n_scenes - 1):  # next kind differs from the previous one
        p = SCENE_KIND_P.copy()
        p[kinds[-1]] = 0.0
        kinds.append(int(np.searchsorted(np.cumsum(p / p.sum()), u, side="right")))
    kinds = np.minimum(np.array(kinds), len(SCENE_KIND_P) - 1)
    scene_vec = unit(0.8 * prototypes[kinds] + 0.6 * unit(rng.standard_normal((n_scenes, schema.CLIP_DIM))))
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
