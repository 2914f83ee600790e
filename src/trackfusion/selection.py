"""Selection: which stretches of a recording a highlight edit keeps, decoded from keep scores, and its score.

A highlight edit keeps some stretches of a recording and drops the rest: per-frame ``kept``
flags, bool (T,), at ``fps`` frames per second (``schema``'s ``kept``). A model gives a
per-frame keep score; ``decode_to_length`` turns it into kept flags whose total is nearest a
target length, and ``SelectionScore`` compares a predicted selection with the true one.

Scores become segments in two parts: a *mask* of candidate frames (the top-k by score, or
those above a threshold), then ``shape``, which makes it look like an edit: margins around
each kept stretch (auto-editor's ``--margin``), short dropped gaps filled (its ``--smooth``,
the seed project's merge) and short kept stretches dropped (the seed project's drop).
``SelectionDecoding`` holds those four knobs, in seconds, so they survive a change of fps.

Every step of ``shape`` is monotone (a superset in gives a superset out), so the kept total
of the top-k mask is non-decreasing in k, and the top-k masks are nested (ties go by index):
``decode_to_length`` bisects on k, and one more frame changes the total by at most
``overshoot_bound``, which bounds how far from the target the result can be.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any, Iterable

import numpy as np

from trackfusion import cuts

BOUNDARY_TOLERANCE_S = 1.0  # a predicted jump cut within +-1 s of a true one matches it


@dataclass(frozen=True)
class SelectionDecoding:
    """How keep scores become segments (auto-editor's margin and --smooth, the seed project's merge/drop).

    Knobs are in seconds and rounded to frames at use (``frames``); a model file stores them as
    ``to_dict()``, with exactly these keys (``from_dict`` refuses others, so a typo is not a default)."""

    margin_before_s: float = 0.0  # lead-in added before each kept stretch
    margin_after_s: float = 0.0  # tail added after each
    min_clip_s: float = 3.0  # kept stretches shorter than this are dropped
    min_gap_s: float = 1.0  # dropped stretches shorter than this between two kept ones are kept

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            finite = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            if not (finite and value >= 0):
                raise ValueError(f"SelectionDecoding.{f.name} must be a finite number >= 0, got {value!r}")

    def frames(self, fps: float) -> tuple[int, int, int, int]:
        """(margin before, margin after, min clip, min gap) in whole frames at `fps`; min clip is at least 1
        (a kept stretch has at least one frame, so a min clip of 0 frames would mean 1)."""
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
        before, after, clip, gap = (max(0, round(s * fps)) for s in
                                    (self.margin_before_s, self.margin_after_s, self.min_clip_s, self.min_gap_s))
        return before, after, max(1, clip), gap

    def to_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SelectionDecoding:
        """The stored form: exactly the four keys (missing or unknown keys are an error)."""
        names = {f.name for f in fields(cls)}
        if set(raw) != names:
            raise ValueError(f"SelectionDecoding keys must be {sorted(names)}, got {sorted(raw)}")
        return cls(**{name: float(raw[name]) for name in names})


def _flags_1d(kept: Any) -> np.ndarray:
    k = np.asarray(kept, bool)
    if k.ndim != 1:
        raise ValueError(f"kept flags must be one-dimensional (T,), got shape {k.shape}")
    return k


def segments(kept: Any) -> np.ndarray:
    """(K, 2) int64 [start, end) of the runs of True, sorted: disjoint and never touching (runs are maximal)."""
    k = _flags_1d(kept)
    edges = np.diff(np.concatenate(([0], k.astype(np.int8), [0])))
    return np.stack((np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)), axis=1).astype(np.int64)


def flags(segs: Any, n: int) -> np.ndarray:
    """bool (n,): True inside any [start, end) of `segs` (the inverse of ``segments``); overlaps are allowed."""
    s = np.asarray(segs, np.int64).reshape(-1, 2)
    if len(s) and (s.min() < 0 or s.max() > n or (s[:, 0] > s[:, 1]).any()):
        raise ValueError(f"segments must satisfy 0 <= start <= end <= {n}")
    depth = np.bincount(s[:, 0], minlength=n + 1) - np.bincount(s[:, 1], minlength=n + 1)
    return np.cumsum(depth[:n]) > 0


def smooth(x: Any, frames: int) -> np.ndarray:
    """Centred moving mean over `frames` (edges held, NaN read as 0): an editor's sense of a stretch, not a frame."""
    x = np.nan_to_num(np.asarray(x, np.float64), nan=0.0)
    if frames <= 1 or len(x) == 0:
        return x
    kernel = np.ones(frames) / frames
    return np.convolve(np.pad(x, (frames // 2, frames - 1 - frames // 2), mode="edge"), kernel, mode="valid")


def shape(mask: Any, fps: float, decoding: SelectionDecoding) -> np.ndarray:
    """bool (T,): runs of `mask` widened by the margins (clipped to the video), then gaps shorter than min_gap
    between two runs filled (not at the video's ends), then runs shorter than min_clip dropped.

    Each step is monotone, so ``shape`` is (a superset in gives a superset out), and so is its kept total:
    widening is a union of windows; a gap filled in A lies between two kept frames of A, which are kept in
    a superset B, so in B it is kept or inside a gap no longer than A's, which is filled; a run of A lies
    inside a run of B, at least as long, so a run kept in A is kept in B. ``decode_to_length`` relies on it.
    """
    m = _flags_1d(mask)
    n = len(m)
    before, after, min_clip, min_gap = decoding.frames(fps)
    # widen: t is kept when a mask frame u has u - before <= t <= u + after, i.e. u in [t - after, t + before]
    count = np.concatenate(([0], np.cumsum(m, dtype=np.int64)))
    t = np.arange(n)
    widened = count[np.minimum(t + before + 1, n)] - count[np.maximum(t - after, 0)] > 0
    segs = segments(widened)
    if len(segs) == 0:
        return widened
    # fill: the gaps between consecutive runs (never the video's ends) shorter than min_gap
    kept_gaps = segs[1:, 0] - segs[:-1, 1] >= min_gap
    starts = np.concatenate((segs[:1, 0], segs[1:, 0][kept_gaps]))
    ends = np.concatenate((segs[:-1, 1][kept_gaps], segs[-1:, 1]))
    # drop: runs shorter than min_clip
    long_enough = ends - starts >= min_clip
    return flags(np.stack((starts[long_enough], ends[long_enough]), axis=1), n)


def decode_threshold(scores: Any, fps: float, decoding: SelectionDecoding, threshold: float) -> np.ndarray:
    """shape(scores > threshold): NaN scores are never above it."""
    return shape(np.asarray(scores, np.float64) > threshold, fps, decoding)


def decode_to_length(scores: Any, fps: float, decoding: SelectionDecoding, target_frames: int) -> np.ndarray:
    """The kept flags whose total is nearest `target_frames`: the top-k frames by score, shaped.

    The order is stable (ties by index, NaN scores last), so the top-k masks are nested and, ``shape``
    being monotone, total(k) is non-decreasing: bisection finds the smallest k with total(k) >= target,
    then k or k-1 is taken, whichever total is nearer (k-1 on a tie: the shorter edit). The chosen k is
    non-decreasing in the target, so the results for growing targets are nested too. target <= 0 keeps
    nothing; target >= T keeps shape(all True). ``overshoot_bound`` bounds the distance to the target.
    """
    s = np.asarray(scores, np.float64)
    if s.ndim != 1:
        raise ValueError(f"scores must be one-dimensional (T,), got shape {s.shape}")
    n, target = len(s), int(target_frames)
    if target <= 0 or n == 0:
        return np.zeros(n, bool)
    if target >= n:
        return shape(np.ones(n, bool), fps, decoding)
    rank = np.empty(n, np.int64)
    rank[np.argsort(-s, kind="stable")] = np.arange(n)  # -NaN is NaN: sorted last

    def shaped(k: int) -> np.ndarray:
        return shape(rank < k, fps, decoding)

    lo, hi = 0, n  # total(lo) < target (total(0) = 0); total(hi) >= target once checked
    lo_flags, hi_flags = np.zeros(n, bool), shaped(n)
    if hi_flags.sum() < target:
        return hi_flags
    while hi - lo > 1:
        mid = (lo + hi) // 2
        mid_flags = shaped(mid)
        if mid_flags.sum() >= target:
            hi, hi_flags = mid, mid_flags
        else:
            lo, lo_flags = mid, mid_flags
    return lo_flags if target - lo_flags.sum() <= hi_flags.sum() - target else hi_flags


def overshoot_bound(fps: float, decoding: SelectionDecoding) -> int:
    """The most one added frame can change the shaped total: a proven upper bound for |total(k+1) - total(k)|.

    With (b, a, c, g) = ``decoding.frames(fps)`` the bound is ``(b + a + 1) + 2 max(g - 1, 0) + 2 (c - 1)``.
    Add frame u to a mask A (B = A + {u}); ``shape`` is monotone, so the total can only grow, and:
    widening adds frames only inside I = [u - b, u + a] (b + a + 1 frames); filling then adds, besides I,
    at most the two gaps of B's widened mask that touch I, each filled only when shorter than g (<= g - 1
    frames), and every other gap keeps its bounds, so its fill is unchanged: the new frames lie in one
    stretch J of at most b + a + 1 + 2 (g - 1) frames. Dropping then changes only the run containing J:
    beyond J it holds at most one stretch of A's run on each side, newly kept only if that run was dropped
    in A, so shorter than c (<= c - 1 frames). The bound is reached (``tests/test_selection.py``): runs of
    c - 1 on both sides of u, each g - 1 frames from its margins, all dropped before and one run after.
    So ``decode_to_length`` is within half of it of the target whenever min_clip <= target <= total(all kept).
    """
    before, after, min_clip, min_gap = decoding.frames(fps)
    return before + after + 1 + 2 * max(min_gap - 1, 0) + 2 * (min_clip - 1)


def boundaries(kept: Any) -> np.ndarray:
    """Frames t in [1, T) where kept[t] != kept[t-1]: the jump-cut boundaries, both edges of every dropped
    stretch (a video's ends are not boundaries: nothing is cut there)."""
    k = _flags_1d(kept)
    return (np.flatnonzero(k[1:] != k[:-1]) + 1).astype(np.int64)


def _ratio(num: int, den: int, f1: float) -> float:
    """num / den; where undefined (den = 0), f1_score's value: 1.0 when nothing was to be found and nothing
    was predicted, else 0.0, so precision, recall and F1 agree on the degenerate cases."""
    return num / den if den else f1


@dataclass
class SelectionScore:
    """Kept frames and jump-cut boundaries pooled over videos: add one video at a time, read the figures."""

    tp: int = 0  # kept frames: kept in both
    fp: int = 0  # kept in the prediction only
    fn: int = 0  # kept in the truth only
    boundary_tp: int = 0
    boundary_fp: int = 0
    boundary_fn: int = 0
    duration_errors_s: list[float] = field(default_factory=list)  # per video |pred kept s - true kept s|
    per_video: dict[str, dict[str, int]] = field(default_factory=dict)  # video id -> its kept-frame tp, fp, fn

    def add(self, pred: Any, true: Any, fps: float, video_id: str | None = None) -> None:
        """One video's predicted and true kept flags (T,), boundaries matched within +-BOUNDARY_TOLERANCE_S;
        with `video_id`, its kept-frame counts are kept apart too (``trackfusion.intervals``)."""
        p, t = _flags_1d(pred), _flags_1d(true)
        if p.shape != t.shape:
            raise ValueError(f"predicted and true kept flags differ in length: {p.shape} vs {t.shape}")
        tp, fp, fn = int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum())
        self.tp, self.fp, self.fn = self.tp + tp, self.fp + fp, self.fn + fn
        if video_id is not None:
            self.per_video[video_id] = {"tp": tp, "fp": fp, "fn": fn}
        btp, bfp, bfn = cuts.match_events(boundaries(p), boundaries(t), round(BOUNDARY_TOLERANCE_S * fps))
        self.boundary_tp, self.boundary_fp, self.boundary_fn = (
            self.boundary_tp + btp, self.boundary_fp + bfp, self.boundary_fn + bfn)
        self.duration_errors_s.append(abs(int(p.sum()) - int(t.sum())) / fps)

    @property
    def kept_f1(self) -> float:
        return cuts.f1_score(self.tp, self.fp, self.fn)

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp, self.kept_f1)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn, self.kept_f1)

    @property
    def boundary_f1(self) -> float:
        return cuts.f1_score(self.boundary_tp, self.boundary_fp, self.boundary_fn)

    @property
    def duration_error_s(self) -> float:
        """Mean over videos (0.0 over none)."""
        return float(np.mean(self.duration_errors_s)) if self.duration_errors_s else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"kept_f1": float(self.kept_f1), "precision": float(self.precision), "recall": float(self.recall),
                "boundary_f1": float(self.boundary_f1), "duration_error_s": float(self.duration_error_s)}


def score_selection(pairs: Iterable[tuple[np.ndarray, np.ndarray]], fps: float) -> SelectionScore:
    """SelectionScore of (predicted kept flags, true kept flags) per video."""
    score = SelectionScore()
    for pred, true in pairs:
        score.add(pred, true, fps)
    return score
