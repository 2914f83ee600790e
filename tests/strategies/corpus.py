"""Tiny random corpus folders for dataset and training tests.

`write_corpus` writes a folder in the `trackfusion.data.corpus` layout (what the align and
normalize stages produce), with a `normalization.json` beside its index like the
normalized corpus. The track is piecewise constant (an editor holds a layout for a
while), so a model that sees the previous frame can learn it within a few steps.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from tests.strategies.tracks import random_track
from trackfusion import schema
from trackfusion.data.corpus import CorpusWriter
from trackfusion.data.normalization import (
    NORMALIZATION_FILE,
    AudioFeaturePreprocessor,
    TrackPreprocessor,
    VisualFeaturePreprocessor,
    save_preprocessors,
)



def write_corpus(
    path: str | Path,
    lengths: Sequence[int] = (40, 25, 30, 18, 22),
    splits: Sequence[str] | None = None,
    *,
    seed: int = 0,
    features: bool = True,
    track_std: float | None = 2.0,
    video_ids: Sequence[str] | None = None,
    kept: Sequence[np.ndarray] | None = None,
) -> Path:
    """Write a corpus with one video per entry of `lengths`.

    splits: one per video; default: the first half train, then alternately val and test
    (at least one video each when there are three or more).
    features: False writes zero audio/visual and all-False audio/visual masks (a corpus
    with no features anywhere, SPEC property 18).
    track_std: writes `normalization.json` with this std (and mean 100) for every
    continuous track parameter (None writes none).
    kept: one (T,) bool array per video, the frames its edit keeps (default: all).
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    n = len(lengths)
    if splits is None:
        splits = _default_splits(n)
    if video_ids is None:
        video_ids = [f"bandicam 2025-03-11 22-57-{i:02d}-575" for i in range(n)]  # real ids have spaces
    with CorpusWriter(path, fps=schema.FPS, meta={"source": "tests.strategies.corpus", "has_features": features}) as writer:
        for i, (vid, split, length) in enumerate(zip(video_ids, splits, lengths)):
            mask = np.ones((length, 3), dtype=bool)
            if features:
                audio = rng.normal(size=(length, schema.AUDIO_WIDTH)).astype(np.float32)
                visual = rng.normal(size=(length, schema.VISUAL_SCALAR_WIDTH)).astype(np.float32)
                clip = rng.normal(size=(length, schema.CLIP_DIM)).astype(np.float16)
                gap = rng.integers(0, length)  # a stretch with no visual samples
                mask[gap : gap + 3, 1] = False
                visual[~mask[:, 1]] = 0.0
                clip[~mask[:, 1]] = 0.0
            else:
                audio = np.zeros((length, schema.AUDIO_WIDTH), dtype=np.float32)
                visual = np.zeros((length, schema.VISUAL_SCALAR_WIDTH), dtype=np.float32)
                clip = np.zeros((length, schema.CLIP_DIM), dtype=np.float16)
                mask[:, :2] = False
            track = random_track(rng, length)
            times = (np.arange(length) / schema.FPS).reshape(length, 1)
            extra = {} if kept is None else {"kept": np.asarray(kept[i], bool).reshape(length, 1)}
            writer.append(vid, split, 0.0, audio=audio, visual=visual, clip=clip, track=track, mask=mask, times=times,
                          **extra)
    if track_std is not None:  # written by the normalization module itself: one format, one writer
        save_preprocessors(path / NORMALIZATION_FILE, *identity_preprocessors(track_mean=100.0, track_std=track_std))
    return path


def _default_splits(n: int) -> list[str]:
    if n < 3:
        return ["train"] * n
    n_train = max(1, n - 2 * max(1, n // 4))
    rest = n - n_train
    return ["train"] * n_train + ["val" if i % 2 == 0 else "test" for i in range(rest)]


@st.composite
def video_lengths(draw: st.DrawFn, *, min_videos: int = 1, max_videos: int = 5, max_length: int = 40) -> list[int]:
    """Lengths of the videos of a corpus; each video has at least one frame."""
    return draw(st.lists(st.integers(1, max_length), min_size=min_videos, max_size=max_videos))


def identity_preprocessors(track_mean: float = 0.0, track_std: float = 1.0) -> tuple:
    """Fitted audio, visual and track preprocessors with given statistics (the track's continuous
    parameters at `track_mean` / `track_std`, everything else 0 / 1)."""
    def state(cls, mean: list[float], std: list[float]) -> dict:
        names = cls().names
        zscored = [n for n, z in zip(names, cls().zscored) if z]
        return {"kind": cls.kind, "columns": names, "zscored": zscored, "mean": mean, "std": std, "count": [1] * len(names)}

    n_audio, n_visual = len(AudioFeaturePreprocessor().names), len(VisualFeaturePreprocessor().names)
    cont = [name in schema.TRACK_CONTINUOUS for name in schema.TRACK_PARAMS]
    return (
        AudioFeaturePreprocessor.from_dict(state(AudioFeaturePreprocessor, [0.0] * n_audio, [1.0] * n_audio)),
        VisualFeaturePreprocessor.from_dict(state(VisualFeaturePreprocessor, [0.0] * n_visual, [1.0] * n_visual)),
        TrackPreprocessor.from_dict(state(TrackPreprocessor, [track_mean if c else 0.0 for c in cont],
                                          [float(track_std) if c else 1.0 for c in cont])),
    )
