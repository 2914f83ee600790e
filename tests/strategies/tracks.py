"""Track frames, the timeline's ``(T, N * 9)`` layout, for every test: one module, one layout rule.

- :func:`timelines`: Hypothesis strategy, editor-like clips (runs of states on a few slots)
  and a start time, as an exported timeline holds them.
- :func:`random_track`: numpy, per-track runs of random states, as a corpus holds them.
- :func:`random_frames`: torch batches ``(B, T, N * 9)``, each frame drawn on its own
  (a model's targets).

Every generator goes through :func:`as_frames`: ``active`` in {0, 1}, an integer asset
class, and an inactive track-frame all zeros (the schema's convention).
"""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from trackfusion import schema

P = schema.NUM_TRACK_PARAMS


def as_frames(active: np.ndarray, asset: np.ndarray, values: np.ndarray) -> np.ndarray:
    """active, asset (..., N) and the other 7 parameters (..., N, 7) -> float32 frames (..., N * 9)."""
    on = np.asarray(active, bool)
    frames = np.concatenate([on[..., None], np.asarray(asset)[..., None], values], axis=-1).astype(np.float32)
    frames *= on[..., None]
    return frames.reshape(*frames.shape[:-2], frames.shape[-2] * P)


def random_track(
    rng: np.random.Generator,
    length: int,
    *,
    num_tracks: int = schema.NUM_TRACKS,
    num_classes: int = schema.NUM_ASSET_CLASSES,
    mean_run: float = 12.0,
    p_active: float | None = None,
    loc: np.ndarray | float = 0.0,
    scale: np.ndarray | float = 1.0,
) -> np.ndarray:
    """(length, num_tracks * 9) float32: each track holds a state for a run of frames, then draws a new one.

    A new state starts with probability 1 / mean_run per frame (1: every frame its own).
    It is active with probability p_active (default: 0.8 on the first three tracks, the
    main footage and overlays, 0.15 on the others), with a uniform asset class and the
    other parameters normal(loc, scale) (per parameter when arrays of 7).
    """
    p = np.where(np.arange(num_tracks) < 3, 0.8, 0.15) if p_active is None else np.full(num_tracks, p_active)
    new = rng.random((length, num_tracks)) < 1.0 / mean_run
    new[0] = True
    run = np.maximum.accumulate(np.where(new, np.arange(length)[:, None], 0), axis=0)  # (T, N): frame the run began
    active = rng.random((length, num_tracks)) < p
    asset = rng.integers(0, num_classes, (length, num_tracks))
    values = rng.normal(loc, scale, (length, num_tracks, P - 2))
    cols = np.arange(num_tracks)
    return as_frames(active[run, cols], asset[run, cols], values[run, cols])


def random_frames(gen: torch.Generator, B: int, T: int, num_tracks: int, num_classes: int) -> torch.Tensor:
    """(B, T, N*9) frames drawn from a seeded torch generator, each frame on its own: half the tracks active."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    rng = np.random.default_rng(seed)
    frames = random_track(rng, B * T, num_tracks=num_tracks, num_classes=num_classes, mean_run=1.0, p_active=0.5)
    return torch.from_numpy(frames).reshape(B, T, num_tracks * P)


def _param(lo: float, hi: float, usual: float) -> st.SearchStrategy[float]:
    # the usual value often, so equal neighbouring runs (one clip in a timeline) happen
    return st.one_of(st.just(usual), st.floats(lo, hi, allow_nan=False, width=32))


@st.composite
def clip_state(draw: st.DrawFn, *, max_asset: int = schema.NUM_ASSET_CLASSES - 1) -> np.ndarray:
    """One active track state (9,) float32 in an editor's units: active 1, an asset class, parameters."""
    values = [
        draw(_param(1.0, 400.0, 100.0)),  # scale, per cent
        draw(_param(0.0, 1920.0, 960.0)),  # x, pixels of the output frame
        draw(_param(0.0, 1080.0, 540.0)),  # y
        *(draw(_param(0.0, 45.0, 0.0)) for _ in range(4)),  # crops, per cent
    ]
    return as_frames(np.ones(1), np.array([draw(st.integers(0, max_asset))]), np.array([values]))


@st.composite
def timelines(
    draw: st.DrawFn,
    *,
    max_tracks: int = 3,
    max_frames: int = 60,
    max_asset: int = schema.NUM_ASSET_CLASSES - 1,
    fps: int = schema.FPS,
) -> tuple[np.ndarray, float]:
    """``(frames (T, 180) float32, start_time)``: random runs of clips on a few slots.

    At least one frame is active, and ``start_time`` is on the 1/fps grid of the recording.
    """
    T = draw(st.integers(1, max_frames))
    slots = draw(st.lists(st.integers(0, schema.NUM_TRACKS - 1), min_size=1, max_size=max_tracks, unique=True))
    frames = np.zeros((T, schema.TRACK_WIDTH), np.float32)
    for slot in slots:
        t = 0
        while t < T:
            n = draw(st.integers(1, max(1, T // 2)))
            if draw(st.booleans()):
                frames[t : t + n, slot * P : (slot + 1) * P] = draw(clip_state(max_asset=max_asset))
            t += n
    if not (frames[:, schema.track_columns("active")] > 0).any():
        t = draw(st.integers(0, T - 1))
        frames[t, slots[0] * P : (slots[0] + 1) * P] = draw(clip_state(max_asset=max_asset))
    start_time = draw(st.integers(0, 36000)) / fps
    return frames, start_time
