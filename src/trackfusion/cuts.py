"""Cuts: the one definition of a cut, cut events, their decoding and the one score.

A **cut** at frame t is a change, from frame t-1, of the *layout*: the set of active
tracks and the asset of each active track (SPEC 6). ``layout`` gives that key per
track (the asset where active, -1 where not), so a cut is ``layout[t] != layout[t-1]``
on any track, and layout accuracy is ``layout_pred == layout_true`` on every track.

A **cut event** is a run of consecutive cut frames, placed at its first frame: a state
that is wrong for k frames, or a change announced over three frames, is one event, not
k. Events are matched one-to-one to true events within +-``tolerance`` frames over
whole videos (never inside training windows), by ``match_events``; ``CutScore`` pools
the matches of many videos. Every figure called ``cut_f1`` in the project (validation
per epoch, test, roll-out, the reference predictors) comes from these functions.

A model gives a per-frame change probability; ``fire_events`` turns it into events
causally (an event at t depends on probabilities <= t only): fire where the
probability reaches the threshold, then stay silent for ``spacing`` frames. Causal
firing is what the roll-out can do step by step, so teacher-forced and rolled-out
figures decode alike; a non-causal peak picker would also leak the truth under
teacher forcing, because the probability drops on the frame after a true cut (the
model is shown it), so the peak would sit on the true cut. ``CutDecoding`` is that
pair of knobs, chosen once (``tune_firing``) and carried to every decoder.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch

from trackfusion import schema

TOLERANCE = 5  # frames: +-0.5 s at 10 fps


def layout(frames: Any) -> Any:
    """(…, N*9) track frames -> (…, N) layout key: the asset id where active, -1 where not.

    Works on numpy arrays and torch tensors alike (the result has the input's kind).
    """
    width = frames.shape[-1]
    active = frames[..., schema.track_columns("active", width)] > 0.5
    asset = frames[..., schema.track_columns("asset_id", width)]
    if isinstance(frames, torch.Tensor):
        return torch.where(active, torch.nan_to_num(asset.float()).round(), torch.full_like(asset.float(), -1.0))
    return np.where(active, np.nan_to_num(np.asarray(asset, np.float64)).round(), -1.0)


def track_changes(frames: Any, prev_frames: Any) -> Any:
    """(…, N) bool: the track's layout key differs from the previous frame's."""
    return layout(frames) != layout(prev_frames)


def cut_flags(frames: Any, prev_frames: Any) -> Any:
    """(…) bool: a cut (any track's layout key changed) at each frame."""
    return track_changes(frames, prev_frames).any(-1)


def video_cut_flags(track: np.ndarray) -> np.ndarray:
    """(T,) bool cut flags of one video's timeline (T, 180); frame 0 has no previous frame."""
    flags = np.zeros(len(track), bool)
    if len(track) > 1:
        flags[1:] = cut_flags(np.asarray(track)[1:], np.asarray(track)[:-1])
    return flags


def cut_events(flags: Any) -> np.ndarray:
    """Frames where a run of consecutive True flags starts: one event per run."""
    f = np.asarray(flags, bool).ravel()
    if f.size == 0:
        return np.zeros(0, np.int64)
    starts = f.copy()
    starts[1:] &= ~f[:-1]
    return np.flatnonzero(starts).astype(np.int64)


def video_cut_events(track: np.ndarray) -> np.ndarray:
    """The cut events of one video's timeline (T, 180)."""
    return cut_events(video_cut_flags(track))


def fires(prob: Any, since_last: Any, threshold: float, spacing: int) -> Any:
    """The firing rule at one frame (scalars, arrays or tensors alike): the probability
    reaches the threshold and the last event is at least ``spacing`` frames back.

    ``fire_events`` applies it along a whole video, the roll-out step by step."""
    return (prob >= threshold) & (since_last >= max(int(spacing), 1))


def fire_events(prob: Any, threshold: float, spacing: int = 1) -> np.ndarray:
    """Causal decoding of a per-frame change probability (T,) into event frames (``fires``)."""
    p = np.asarray(prob, np.float64).ravel()
    above = np.flatnonzero(p >= threshold)
    if max(int(spacing), 1) == 1 or len(above) == 0:
        return above.astype(np.int64)
    out: list[int] = []
    last = -(10**9)
    for t in above.tolist():  # only frames above threshold: a few per cent of a video
        if fires(p[t], t - last, threshold, spacing):
            out.append(t)
            last = t
    return np.asarray(out, np.int64)


@dataclass(frozen=True)
class CutDecoding:
    """The firing rule's two knobs (``fires``), as training chose them for a model; a model
    file stores them as ``{"threshold": ..., "spacing": ...}`` (``to_dict`` / ``from_dict``)."""

    threshold: float = 0.5  # the cut probability that fires, not the active-flag threshold
    spacing: int = 1  # frames after an event before the next may fire

    def events(self, prob: Any) -> np.ndarray:
        """Cut events of one video's cut probabilities (T,) (``fire_events``)."""
        return fire_events(prob, self.threshold, self.spacing)

    def to_dict(self) -> dict[str, float]:
        return {"threshold": self.threshold, "spacing": self.spacing}

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> CutDecoding:
        """The stored form (or ``tune_firing``'s result); missing knobs take the defaults."""
        raw = raw or {}
        return cls(float(raw.get("threshold", cls.threshold)), int(raw.get("spacing", cls.spacing)))


def layout_agreement(pred_layout: np.ndarray, true_layout: np.ndarray, counted: np.ndarray) -> tuple[int, int]:
    """(frames whose whole layout equals the truth, frames counted) over (T, N) layouts;
    `counted` (T,) leaves out what is given rather than predicted (a video's first frame)."""
    counted = np.asarray(counted, bool)
    return int(((np.asarray(pred_layout) == np.asarray(true_layout)).all(-1) & counted).sum()), int(counted.sum())


def match_events(pred: Any, true: Any, tolerance: int = TOLERANCE) -> tuple[int, int, int]:
    """One-to-one matching of two sorted event lists of one video within +-tolerance: (tp, fp, fn).

    Greedy in time order (each true event takes the earliest free prediction in its
    window) is a maximum matching, because all windows have the same width.
    """
    p = np.sort(np.asarray(pred, np.int64).ravel()).tolist()
    t = np.sort(np.asarray(true, np.int64).ravel()).tolist()
    matched, i = 0, 0
    for c in t:
        while i < len(p) and p[i] < c - tolerance:
            i += 1  # too early for this and every later true event
        if i < len(p) and p[i] <= c + tolerance:
            matched += 1
            i += 1
    return matched, len(p) - matched, len(t) - matched


def f1_score(tp: float, fp: float, fn: float) -> float:
    """F1 from counts; 1.0 when there is nothing to find and nothing was predicted."""
    denom = 2 * tp + fp + fn
    return 1.0 if denom == 0 else 2 * tp / denom


@dataclass
class CutScore:
    """Event matches pooled over videos: add one video at a time, read the figures."""

    tolerance: int = TOLERANCE
    tp: int = 0
    fp: int = 0
    fn: int = 0
    videos: int = 0
    frames: int = 0
    per_video: dict[str, dict[str, int]] = field(default_factory=dict)  # video id -> its tp, fp, fn (``intervals``)

    def add(self, pred_events: Any, true_events: Any, frames: int = 0, video_id: str | None = None) -> None:
        tp, fp, fn = match_events(pred_events, true_events, self.tolerance)
        self.tp, self.fp, self.fn = self.tp + tp, self.fp + fp, self.fn + fn
        self.videos += 1
        self.frames += int(frames)
        if video_id is not None:
            self.per_video[video_id] = {"tp": int(tp), "fp": int(fp), "fn": int(fn)}

    @property
    def f1(self) -> float:
        return f1_score(self.tp, self.fp, self.fn)

    def figures(self) -> dict[str, float]:
        """cut_f1, precision, recall and the event counts; over no videos every figure is None."""
        if self.videos == 0:
            return {"cut_f1": None, "cut_precision": None, "cut_recall": None, "true_cuts": 0, "pred_cuts": 0}
        pred, true = self.tp + self.fp, self.tp + self.fn
        return {
            "cut_f1": self.f1,
            "cut_precision": self.tp / pred if pred else 1.0,
            "cut_recall": self.tp / true if true else 1.0,
            "true_cuts": int(true),
            "pred_cuts": int(pred),
        }


def score_events(pairs: Iterable[tuple[Any, Any]], tolerance: int = TOLERANCE) -> CutScore:
    """CutScore of (predicted events, true events) per video."""
    score = CutScore(tolerance)
    for pred, true in pairs:
        score.add(pred, true)
    return score


def tune_firing(
    probs: list[np.ndarray],
    true_events: list[np.ndarray],
    thresholds: Iterable[float] | None = None,
    spacings: Iterable[int] = (1, 3, 5, 8, 11, 15),
    tolerance: int = TOLERANCE,
) -> dict[str, float]:
    """The (threshold, spacing) of ``fire_events`` with the best pooled F1 on these videos.

    Meant for the validation split only: the test split never chooses its own decoding.
    Ties go to the higher threshold, then the larger spacing (fewer events).
    """
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2) if thresholds is None else np.asarray(list(thresholds))
    best = {"threshold": 0.5, "spacing": 1, "cut_f1": -1.0}
    for spacing in sorted(spacings):
        for thr in sorted(grid.tolist()):
            f1 = score_events(((fire_events(p, thr, spacing), t) for p, t in zip(probs, true_events)), tolerance).f1
            if f1 >= best["cut_f1"]:
                best = {"threshold": float(thr), "spacing": int(spacing), "cut_f1": float(f1)}
    return best
