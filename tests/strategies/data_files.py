"""Hypothesis strategies and helpers that write realistic raw feature files.

Tables are pandas DataFrames with the exact file columns of ``schema``; the writers
turn them into CSVs the way the real extractor does (NaN as an empty field, text quoted
only when it holds commas or quotes). Options are keyword-only; examples stay tiny
(tens of rows) so that a property runs 100 examples in seconds.

Numeric payloads (energies, CLIP vectors) come from a numpy generator seeded by a
drawn integer: drawing 512 floats per row through Hypothesis would be slow and its
shrinking would not make a failure any clearer than the seed does.
"""
from __future__ import annotations

import logging
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from trackfusion import schema
from trackfusion.io.sequences import TrackData, write_sequences
from tests.strategies.tracks import random_track

# Letters, digits, spaces and the punctuation recording names carry, plus glob
# characters ([, ], *, ?) that would break a glob-based lookup, and Japanese.
ID_ALPHABET = string.ascii_letters + string.digits + " -_.,()[]'&#+=!~*?" + "日本語の録画"
JAPANESE_WORDS = ("こんにちは", "今日は、いい天気", "ゲーム実況", "えっ?", "「やった」", "すごい,本当に")

AUDIO_COLUMNS = schema.input_names(schema.AUDIO_FILE_COLUMNS)
VISUAL_COLUMNS = schema.input_names(schema.VISUAL_FILE_COLUMNS)
SALIENCY_FACE = ["saliency_x", "saliency_y", *schema.FACE_FIELDS]


def _valid_id(s: str) -> bool:
    return s not in (".", "..") and not s.startswith(".")


def video_ids() -> st.SearchStrategy[str]:
    """Recording file stems: bandicam-style names or free text with spaces and punctuation."""
    bandicam = st.builds(
        lambda d, h, m, s, ms: f"bandicam 2025-03-{d:02d} {h:02d}-{m:02d}-{s:02d}-{ms:03d}",
        st.integers(1, 28), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999),
    )
    free = st.text(ID_ALPHABET, min_size=1, max_size=20).filter(_valid_id)
    return st.one_of(bandicam, free)


def distinct_video_ids(*, min_size: int = 1, max_size: int = 4) -> st.SearchStrategy[list[str]]:
    """Distinct ids none of whose file names collide (``x`` + ``_visual`` is another id's audio name)."""

    def no_collision(ids: list[str]) -> bool:
        names = [schema.audio_file_name(v) for v in ids] + [schema.visual_file_name(v) for v in ids]
        return len(set(names)) == len(names)

    return st.lists(video_ids(), min_size=min_size, max_size=max_size, unique=True).filter(no_collision)


@st.composite
def sample_times(
    draw: st.DrawFn,
    *,
    min_size: int = 1,
    max_size: int = 20,
    step_s: float = 0.1,
    jitter_s: float = 0.0,
    max_gaps: int = 0,
    gap_range_s: tuple[float, float] = (1.2, 8.0),
    start_range_s: tuple[float, float] = (0.0, 3.0),
) -> np.ndarray:
    """(N,) strictly increasing sample times (rounded to 1 ms, like the extractors write them).

    Steps are `step_s` +- `jitter_s`; up to `max_gaps` steps are replaced by gaps drawn
    from `gap_range_s`.
    """
    n = draw(st.integers(min_size, max_size))
    start = draw(st.floats(*start_range_s, allow_nan=False))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    steps = step_s + rng.uniform(-jitter_s, jitter_s, max(n - 1, 0))
    if max_gaps and n > 1:
        k = draw(st.integers(0, min(max_gaps, n - 1)))
        where = draw(st.lists(st.integers(0, n - 2), min_size=k, max_size=k, unique=True))
        for i in where:
            steps[i] = draw(st.floats(*gap_range_s, allow_nan=False))
    steps = np.maximum(np.round(steps, 3), 0.002)  # keep steps above the 1 ms rounding so times stay distinct
    return np.round(start + np.concatenate([[0.0], np.cumsum(steps)]), 3)


def _with_missing(rng: np.random.Generator, values: np.ndarray, fraction: float, inf_fraction: float) -> np.ndarray:
    values = values.astype(np.float64)
    u = rng.random(values.shape)
    values[u < fraction] = np.nan
    values[(u >= fraction) & (u < fraction + inf_fraction)] = np.inf * rng.choice([-1, 1])
    return values


def make_audio_table(
    times: np.ndarray,
    *,
    seed: int = 0,
    nan_fraction: float = 0.0,
    inf_fraction: float = 0.0,
    japanese_text: bool = True,
    numeric_speakers: bool = False,
) -> pd.DataFrame:
    """An audio table at `times` with the file's columns (``schema.AUDIO_FILE_COLUMNS``).

    `nan_fraction` / `inf_fraction` empty or make infinite that share of the numeric
    inputs; speakers are often empty, else numeric or text ids; text_word is quoted
    Japanese with commas.
    """
    n = len(times)
    rng = np.random.default_rng(seed)
    pool: list[object] = [1, 2, 3] if numeric_speakers else ["SPEAKER_00", "SPEAKER_01", "話者 2"]
    speakers = [None if rng.random() < 0.4 else pool[rng.integers(len(pool))] for _ in range(n)]
    words = [
        (JAPANESE_WORDS[rng.integers(len(JAPANESE_WORDS))] if japanese_text else "word, with comma")
        if rng.random() < 0.5 else None
        for _ in range(n)
    ]
    return pd.DataFrame({
        "time": times,
        "audio_energy_rms": _with_missing(rng, np.round(rng.random(n), 6), nan_fraction, inf_fraction),
        "audio_is_speaking": _with_missing(rng, rng.integers(0, 2, n), nan_fraction, inf_fraction),
        "silence_duration_ms": _with_missing(rng, np.round(rng.uniform(0, 3000, n), 1), nan_fraction, inf_fraction),
        "speaker_id": pd.Series(speakers, dtype=object),
        "text_is_active": _with_missing(rng, rng.integers(0, 2, n), nan_fraction, inf_fraction),
        "text_word": pd.Series(words, dtype=object),
    })[AUDIO_COLUMNS]


@st.composite
def audio_tables(
    draw: st.DrawFn,
    times: np.ndarray,
    *,
    nan_fraction: float | None = None,
    inf_fraction: float = 0.0,
    japanese_text: bool = True,
    numeric_speakers: bool | None = None,
) -> pd.DataFrame:
    """:func:`make_audio_table` with a drawn seed; `nan_fraction` and `numeric_speakers` drawn when None."""
    return make_audio_table(
        times,
        seed=draw(st.integers(0, 2**32 - 1)),
        nan_fraction=draw(st.sampled_from([0.0, 0.0, 0.2])) if nan_fraction is None else nan_fraction,
        inf_fraction=inf_fraction,
        japanese_text=japanese_text,
        numeric_speakers=draw(st.booleans()) if numeric_speakers is None else numeric_speakers,
    )


def make_visual_table(
    times: np.ndarray,
    *,
    seed: int = 0,
    nan_saliency_face: bool = False,
    nan_fraction: float = 0.0,
    inf_fraction: float = 0.0,
) -> pd.DataFrame:
    """A visual table at `times`: ten scalars, then unit CLIP vectors refreshed about every 12 rows.

    With `nan_saliency_face`, saliency and face fields are empty in many rows (normal in
    real files); face fields are always empty where ``face_count == 0``.
    `nan_fraction` / `inf_fraction` damage scene_change and visual_motion too.
    """
    n = len(times)
    rng = np.random.default_rng(seed)
    faces = rng.integers(0, 3, n).astype(np.float64)
    cols: dict[str, np.ndarray] = {
        "time": times,
        "scene_change": _with_missing(rng, np.round(rng.random(n), 6), nan_fraction, inf_fraction),
        "visual_motion": _with_missing(rng, np.round(rng.uniform(0, 30, n), 6), nan_fraction, inf_fraction),
        "saliency_x": np.round(rng.random(n), 6),
        "saliency_y": np.round(rng.random(n), 6),
        schema.FACE_COUNT: faces,
    }
    for name in schema.FACE_FIELDS:
        cols[name] = np.where(faces > 0, np.round(rng.random(n), 6), np.nan)
    if nan_saliency_face:
        for name in SALIENCY_FACE:
            cols[name] = np.where(rng.random(n) < 0.3, np.nan, cols[name])
    n_clip = n // 12 + 1
    clip = rng.normal(size=(n_clip, schema.CLIP_DIM))
    clip /= np.linalg.norm(clip, axis=1, keepdims=True)
    clip = np.round(clip[np.arange(n) // 12], 6)  # (N, 512), held between refreshes
    frame = pd.DataFrame(cols)
    frame = pd.concat([frame, pd.DataFrame(clip, columns=schema.input_names(schema.CLIP_COLUMNS))], axis=1)
    return frame[VISUAL_COLUMNS]


@st.composite
def visual_tables(
    draw: st.DrawFn,
    times: np.ndarray,
    *,
    nan_saliency_face: bool | None = None,
    nan_fraction: float = 0.0,
    inf_fraction: float = 0.0,
) -> pd.DataFrame:
    """:func:`make_visual_table` with a drawn seed; `nan_saliency_face` drawn when None."""
    return make_visual_table(
        times,
        seed=draw(st.integers(0, 2**32 - 1)),
        nan_saliency_face=draw(st.booleans()) if nan_saliency_face is None else nan_saliency_face,
        nan_fraction=nan_fraction,
        inf_fraction=inf_fraction,
    )


def write_table(path: Path, table: pd.DataFrame) -> Path:
    """Write a feature table like the extractors do: NaN empty, inf as ``inf``, minimal quoting."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
    return path


@dataclass
class RawVideo:
    video_id: str
    start_time: float
    track: np.ndarray  # (T, 180)
    audio: pd.DataFrame | None = None
    visual: pd.DataFrame | None = None
    kept: np.ndarray | None = None  # (T,) uint8, None: every frame kept


def write_raw_dir(root: Path, videos: Sequence[RawVideo]) -> Path:
    """Lay out `videos` as SPEC section 3 (sequences.npz + features/); returns `root`."""
    root.mkdir(parents=True, exist_ok=True)
    write_sequences(root / schema.SEQUENCES_FILE, [TrackData(v.video_id, v.start_time, v.track, v.kept) for v in videos])
    features = root / schema.FEATURES_DIR
    features.mkdir(exist_ok=True)
    for v in videos:
        if v.audio is not None:
            write_table(features / schema.audio_file_name(v.video_id), v.audio)
        if v.visual is not None:
            write_table(features / schema.visual_file_name(v.video_id), v.visual)
    return root


@st.composite
def raw_videos(
    draw: st.DrawFn,
    *,
    min_videos: int = 1,
    max_videos: int = 3,
    max_frames: int = 30,
    fps: int = schema.FPS,
    missing: bool = True,
    max_gaps: int = 0,
) -> list[RawVideo]:
    """Tiny videos with jittered audio (~10 Hz) and visual (~12 Hz) samples.

    With `missing`, a video may lack its audio or visual file (or both).
    """
    ids = draw(distinct_video_ids(min_size=min_videos, max_size=max_videos))
    videos = []
    for i, vid in enumerate(ids):
        n_frames = draw(st.integers(1, max_frames))
        start = round(draw(st.floats(0.0, 5.0, allow_nan=False)), 2)
        span = (max(0.0, start - 1.0), start + 0.5)  # features may start before or after the track
        kinds = draw(st.sampled_from(["both", "both", "audio", "visual", "none"])) if missing else "both"
        audio = visual = None
        if kinds in ("both", "audio"):
            t = draw(sample_times(min_size=1, max_size=n_frames + 5, step_s=0.1, jitter_s=0.03,
                                  max_gaps=max_gaps, start_range_s=span))
            audio = draw(audio_tables(t))
        if kinds in ("both", "visual"):
            t = draw(sample_times(min_size=1, max_size=n_frames + 5, step_s=1 / 12, jitter_s=0.02,
                                  max_gaps=max_gaps, start_range_s=span))
            visual = draw(visual_tables(t))
        videos.append(RawVideo(vid, start, random_track(np.random.default_rng(i), n_frames), audio, visual))
    return videos


class capture_logs:
    """Collect log records of `logger` (and its children) at `level`, per Hypothesis example.

    pytest's caplog is function-scoped, so it would keep records across the examples of
    one @given test; this context manager starts empty every time.
    """

    def __init__(self, logger: str = "trackfusion", level: int = logging.INFO):
        self.logger, self.level = logging.getLogger(logger), level
        self.records: list[logging.LogRecord] = []

    def __enter__(self) -> list[logging.LogRecord]:
        self._handler = _ListHandler(self.records, self.level)
        self._old_level = self.logger.level
        self.logger.addHandler(self._handler)
        self.logger.setLevel(min(self.level, self._old_level or self.level))
        return self.records

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self._handler)
        self.logger.setLevel(self._old_level)


class _ListHandler(logging.Handler):
    def __init__(self, records: list[logging.LogRecord], level: int):
        super().__init__(level)
        self._records = records

    def emit(self, record: logging.LogRecord) -> None:
        self._records.append(record)
