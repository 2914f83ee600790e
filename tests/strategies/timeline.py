"""Hypothesis strategies for track frames as an editor's timeline produces them."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from trackfusion import schema

P = schema.NUM_TRACK_PARAMS


def _param(lo: float, hi: float, usual: float) -> st.SearchStrategy[float]:
    # the usual value often, so equal neighbouring runs (one clip in a timeline) happen
    return st.one_of(st.just(usual), st.floats(lo, hi, allow_nan=False, width=32))


@st.composite
def clip_state(draw, *, max_asset: int = schema.NUM_ASSET_CLASSES - 1) -> np.ndarray:
    """One active track state (9,) float32: active 1, an asset class, parameters."""
    return np.array(
        [
            1.0,
            draw(st.integers(0, max_asset)),
            draw(_param(1.0, 400.0, 100.0)),  # scale
            draw(_param(0.0, 1920.0, 960.0)),  # x, pixels of the output frame
            draw(_param(0.0, 1080.0, 540.0)),  # y
            *(draw(_param(0.0, 45.0, 0.0)) for _ in range(4)),  # crops
        ],
        dtype=np.float32,
    )


@st.composite
def track_frames(
    draw,
    *,
    max_tracks: int = 3,
    max_frames: int = 60,
    max_asset: int = schema.NUM_ASSET_CLASSES - 1,
    fps: int = schema.FPS,
) -> tuple[np.ndarray, float]:
    """``(frames (T, 180) float32, start_time)``: random runs of states on a few slots.

    Inactive track-frames are all zeros (the schema's convention), at least one frame is
    active, and ``start_time`` is on the 1/fps grid of the recording.
    """
    T = draw(st.integers(1, max_frames))
    slots = draw(st.lists(st.integers(0, schema.NUM_TRACKS - 1), min_size=1, max_size=max_tracks, unique=True))
    frames = np.zeros((T, schema.TRACK_WIDTH), np.float32)
    for slot in slots:
        t = 0
        while t < T:
            n = draw(st.integers(1, max(1, T // 2)))
            if draw(st.booleans()):
                frames[t:t + n, slot * P:(slot + 1) * P] = draw(clip_state(max_asset=max_asset))
            t += n
    if not (frames[:, schema.track_columns("active")] > 0).any():
        t = draw(st.integers(0, T - 1))
        frames[t, slots[0] * P:(slots[0] + 1) * P] = draw(clip_state(max_asset=max_asset))
    start_time = draw(st.integers(0, 36000)) / fps
    return frames, start_time
