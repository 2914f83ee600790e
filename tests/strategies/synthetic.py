"""Hypothesis strategies for the synthetic corpus generator: small, fast params."""
from __future__ import annotations

from hypothesis import strategies as st

from trackfusion.params import SyntheticParams


@st.composite
def _synthetic_params(
    draw: st.DrawFn, *, max_videos: int, min_duration_s: float, max_duration_s: float
) -> SyntheticParams:
    lo = draw(st.floats(min_duration_s, max_duration_s, allow_nan=False))
    hi = draw(st.floats(lo, max_duration_s, allow_nan=False))
    return SyntheticParams(
        seed=draw(st.integers(0, 2**31 - 1)),
        num_videos=draw(st.integers(1, max_videos)),
        min_duration_s=lo,
        max_duration_s=hi,
    )


def synthetic_params(
    *, max_videos: int = 7, min_duration_s: float = 1.0, max_duration_s: float = 20.0
) -> st.SearchStrategy[SyntheticParams]:
    """Valid `synthetic.*` params for tiny corpora (a few videos of a few seconds each).

    Durations start at `min_duration_s` (>= 0.2 s, two frames at 10 fps); with
    `max_videos` >= 6 the fault plan injects every fault kind.
    """
    if not 0.2 <= min_duration_s <= max_duration_s:
        raise ValueError(f"need 0.2 <= min_duration_s <= max_duration_s, got {min_duration_s}, {max_duration_s}")
    return _synthetic_params(max_videos=max_videos, min_duration_s=min_duration_s, max_duration_s=max_duration_s)
