"""Hypothesis strategies for the aligner: irregular sample times, frame grids, in-memory sample tables.

(`tests.strategies.data_files` draws what feature *files* hold: regular, ms-rounded times and
DataFrames; these are the aligner's inputs, times of any spacing, NaN for a missing sample.)

Structure (times, gaps, which entries are missing) is drawn by Hypothesis so it shrinks;
bulk values (CLIP vectors, scalars) come from a numpy generator seeded by a drawn
integer, which keeps 512-wide rows cheap.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from trackfusion import schema


@dataclass
class Table:
    """A FeatureTable-like input: what :func:`FeatureAligner.align_features` reads."""

    times: np.ndarray  # (N,) float64 strictly increasing
    values: np.ndarray  # (N, W) float32, NaN = missing sample
    clip: np.ndarray | None = None  # (N, 512) float16 for visual
    issues: dict = field(default_factory=dict)


@st.composite
def irregular_times(
    draw: st.DrawFn,
    *,
    min_size: int = 1,
    max_size: int = 30,
    min_step: float = 0.02,
    max_step: float = 0.4,
    gap_probability: float = 0.15,
    max_gap: float = 8.0,
) -> np.ndarray:
    """Strictly increasing sample times with jittered steps and occasional long gaps."""
    n = draw(st.integers(min_size, max_size))
    start = draw(st.floats(-1.0, 2.0, allow_nan=False))
    step = st.floats(min_step, max_step, allow_nan=False)
    gap = st.floats(max(max_step, 0.5), max_gap, allow_nan=False)
    steps = draw(
        st.lists(
            st.one_of(step, gap) if gap_probability > 0 else step, min_size=max(n - 1, 0), max_size=max(n - 1, 0)
        )
    )
    return start + np.concatenate([[0.0], np.cumsum(steps)]).astype(np.float64)


@st.composite
def frame_times(draw: st.DrawFn, *, min_frames: int = 1, max_frames: int = 40, fps: float = 10.0) -> np.ndarray:
    """A track frame grid: start + i / fps."""
    n = draw(st.integers(min_frames, max_frames))
    start = draw(st.floats(-1.5, 3.0, allow_nan=False))
    return start + np.arange(n, dtype=np.float64) / fps


def _scalar_values(rng: np.random.Generator, columns: tuple[schema.Column, ...], n: int) -> np.ndarray:
    out = np.empty((n, len(columns)), np.float32)
    for j, col in enumerate(columns):
        if col.kind in (schema.Kind.BINARY, schema.Kind.EVENT):
            out[:, j] = rng.random(n) < (0.2 if col.kind == schema.Kind.EVENT else 0.5)
        elif col.kind == schema.Kind.COUNT:
            out[:, j] = rng.integers(0, 3, n)
        else:
            out[:, j] = rng.normal(rng.uniform(-5, 5), rng.uniform(0.1, 10), n)
    return out


def _punch_missing(rng: np.random.Generator, values: np.ndarray, fraction: float, columns: list[int]) -> None:
    """Set a fraction of entries of `columns` to NaN or +-inf (missing samples)."""
    if fraction <= 0 or not len(values):
        return
    hole = rng.random((len(values), len(columns))) < fraction
    bad = rng.choice(np.array([np.nan, np.inf, -np.inf], np.float32), size=hole.shape)
    sub = values[:, columns]
    sub[hole] = bad[hole]
    values[:, columns] = sub


@st.composite
def audio_samples(
    draw: st.DrawFn, *, times: np.ndarray | None = None, missing_fraction: float | None = None, **time_kw
) -> Table:
    """An audio table (5 inputs incl. speaker_turn) with optional missing samples."""
    s = draw(irregular_times(**time_kw)) if times is None else times
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = _scalar_values(rng, schema.AUDIO_INPUTS, len(s))
    frac = draw(st.sampled_from([0.0, 0.0, 0.2])) if missing_fraction is None else missing_fraction
    _punch_missing(rng, values, frac, [0, 1, 2, 3])
    return Table(s, values)


@st.composite
def visual_samples(
    draw: st.DrawFn,
    *,
    times: np.ndarray | None = None,
    missing_fraction: float | None = None,
    missing_clip_rows: bool | None = None,
    held_clip: bool | None = None,
    **time_kw,
) -> Table:
    """A visual table: ten scalars (face fields empty where face_count is 0) and CLIP rows.

    CLIP vectors are not unit length (as in real files) and may be held for a few rows.
    """
    s = draw(irregular_times(**time_kw)) if times is None else times
    n = len(s)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = _scalar_values(rng, schema.VISUAL_SCALARS, n)
    face_count = schema.input_names(schema.VISUAL_SCALARS).index(schema.FACE_COUNT)
    face = [schema.input_names(schema.VISUAL_SCALARS).index(f) for f in schema.FACE_FIELDS]
    no_face = values[:, face_count] == 0
    values[np.ix_(no_face, face)] = np.nan  # normal: no face, no face fields
    frac = draw(st.sampled_from([0.0, 0.0, 0.2])) if missing_fraction is None else missing_fraction
    _punch_missing(rng, values, frac, [0, 1, 2, 3, 4, *face])
    clip = rng.normal(0.0, rng.uniform(0.05, 2.0), (n, schema.CLIP_DIM)).astype(np.float32)
    if draw(st.booleans()) if held_clip is None else held_clip:
        hold = np.maximum.accumulate(np.where(rng.random(n) < 0.3, np.arange(n), 0))
        clip = clip[hold]
    clip = clip.astype(np.float16)
    if draw(st.sampled_from([False, False, True])) if missing_clip_rows is None else missing_clip_rows:
        rows = rng.random(n) < 0.2
        clip[rows] = np.nan
    return Table(s, values, clip)
