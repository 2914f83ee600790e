"""Edit metrics over whole splits (SPEC 6), vectorised over batches and tracks.

Track-level figures:
- ``active_f1``: F1 of the predicted active flags (sigmoid(logit) > threshold) over all
  real track-frames.
- ``asset_accuracy``: argmax asset == true asset, on true-active track-frames.
- ``scale_mae``, ``position_mae``, ``crop_mae``: mean absolute error of the predicted
  values on true-active track-frames (x and y, or the four crops, pooled). With
  ``std`` / ``param_std`` the errors are multiplied by each parameter's std first, so a
  model trained on z-scored parameters reports in original units (percent).

Cuts: a cut at frame t is a change from the previous state in the set of active tracks
or in the asset of a track active in both. A *predicted* cut compares the decoded
prediction at t with the model's INPUT previous state ``prev_track`` at t (true t-1
under teacher forcing, the previous prediction under roll-out); a *true* cut compares
the target at t with the same previous state (= target t-1 under teacher forcing).
Cuts are matched one-to-one within +-tolerance frames inside each sequence (row), and
``cut_f1`` pools matches over the split.

Frame 0 of a video has no previous frame (its input state is all zeros), so a cut
there is meaningless: the caller passes ``cut_mask (B, T)``, True where a frame may
count as a cut (real frame with a real previous frame); by default every real frame
counts.

Conventions: an F1 whose precision and recall are both undefined (nothing predicted,
nothing true) is 1.0; an accuracy or MAE over nothing is 0.0. Inputs may be numpy
arrays or torch tensors.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from trackfusion.loss import split_targets
from trackfusion.model import decode_frames

CROPS: tuple[str, ...] = ("crop_l", "crop_r", "crop_t", "crop_b")


def _t(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _frame_mask(mask: Any, shape: torch.Size, device: torch.device) -> torch.Tensor:
    """(…, N) track-frame mask from an optional frame mask (…)."""
    if mask is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    return _t(mask).to(device).bool().unsqueeze(-1).expand(shape)


def f1_score(tp: float, fp: float, fn: float) -> float:
    denom = 2 * tp + fp + fn
    return 1.0 if denom == 0 else 2 * tp / denom


# --- counts (shared by the functions and the accumulator) ---------------------------
def _active_counts(pred: Any, true: Any, frame_mask: Any = None) -> tuple[int, int, int]:
    pred, true = _t(pred).bool(), _t(true).bool()
    m = _frame_mask(frame_mask, true.shape, true.device)
    tp = int((pred & true & m).sum())
    fp = int((pred & ~true & m).sum())
    fn = int((~pred & true & m).sum())
    return tp, fp, fn


def _asset_counts(pred: Any, true: Any, true_active: Any, frame_mask: Any = None) -> tuple[int, int]:
    pred, true = _t(pred).long(), _t(true).round().long()
    on = _t(true_active).bool() & _frame_mask(frame_mask, true.shape, true.device)
    return int(((pred == true) & on).sum()), int(on.sum())


def _abs_error(pred: Any, true: Any, true_active: Any, frame_mask: Any = None, std: Any = None) -> tuple[float, int]:
    """Sum of |pred - true| (* std) over true-active track-frames and the number of values summed.

    pred/true are (…, N, P); std broadcasts to (N, P) or (P,).
    """
    pred, true = _t(pred).double(), _t(true).double()
    on = _t(true_active).bool() & _frame_mask(frame_mask, true.shape[:-1], true.device)  # (…, N)
    err = (pred - true).abs()  # (…, N, P)
    if std is not None:
        err = err * _t(std).double().to(err.device)
    err = torch.where(on.unsqueeze(-1), err, torch.zeros_like(err))
    return float(err.sum()), int(on.sum()) * true.shape[-1]


# --- public per-metric functions ------------------------------------------------------
def active_f1(pred_active: Any, true_active: Any, frame_mask: Any = None) -> float:
    """F1 of active flags (…, N) over real track-frames; frame_mask (…) True = real frame."""
    return f1_score(*_active_counts(pred_active, true_active, frame_mask))


def asset_accuracy(pred_asset: Any, true_asset: Any, true_active: Any, frame_mask: Any = None) -> float:
    correct, total = _asset_counts(pred_asset, true_asset, true_active, frame_mask)
    return correct / total if total else 0.0


def _mae(*args: Any) -> float:
    total, count = _abs_error(*args)
    return total / count if count else 0.0


def scale_mae(pred: Any, true: Any, true_active: Any, frame_mask: Any = None, std: Any = None) -> float:
    """pred/true (…, N); std a scalar or (N,)."""
    std = None if std is None else _t(std).double().unsqueeze(-1)
    return _mae(_t(pred).unsqueeze(-1), _t(true).unsqueeze(-1), true_active, frame_mask, std)


def position_mae(pred: Any, true: Any, true_active: Any, frame_mask: Any = None, std: Any = None) -> float:
    """pred/true (…, N, 2) as (x, y); std (2,) or (N, 2)."""
    return _mae(pred, true, true_active, frame_mask, std)


def crop_mae(pred: Any, true: Any, true_active: Any, frame_mask: Any = None, std: Any = None) -> float:
    """pred/true (…, N, 4) as (l, r, t, b); std (4,) or (N, 4)."""
    return _mae(pred, true, true_active, frame_mask, std)


# --- cuts -----------------------------------------------------------------------------
def state_changes(frames: Any, prev_frames: Any) -> torch.Tensor:
    """(…, N*9) frames vs previous frames -> (…) bool: active set or an active track's asset changed."""
    cur, prev = split_targets(_t(frames).float()), split_targets(_t(prev_frames).float())
    a, pa = cur["active"] > 0.5, prev["active"] > 0.5  # (…, N)
    asset_changed = cur["asset"].round() != prev["asset"].round()
    return ((a != pa) | (a & pa & asset_changed)).any(dim=-1)


def match_cuts(pred_cuts: Any, true_cuts: Any, tolerance: int = 5) -> tuple[int, int, int]:
    """One-to-one matching of cut frames within +-tolerance in each row; returns (tp, fp, fn).

    pred_cuts/true_cuts: (T,) or (B, T) bool. Rows are laid end to end with a gap wider
    than the tolerance, so one pass over all cuts of all rows matches within rows only.
    Greedy in time order (each true cut takes the earliest free predicted cut in its
    window) is optimal here because all windows have the same width.
    """
    pred = np.atleast_2d(_t(pred_cuts).bool().cpu().numpy())
    true = np.atleast_2d(_t(true_cuts).bool().cpu().numpy())
    if pred.shape != true.shape:
        raise ValueError(f"pred_cuts {pred.shape} and true_cuts {true.shape} must have the same shape")
    stride = pred.shape[-1] + 2 * tolerance + 1
    rp, tp_ = np.nonzero(pred.reshape(-1, pred.shape[-1]))
    rt, tt = np.nonzero(true.reshape(-1, true.shape[-1]))
    p = (rp * stride + tp_).tolist()  # sorted (row-major nonzero)
    t = (rt * stride + tt).tolist()
    matched, i = 0, 0
    for c in t:
        while i < len(p) and p[i] < c - tolerance:
            i += 1  # too early for this and every later true cut
        if i < len(p) and p[i] <= c + tolerance:
            matched += 1
            i += 1
    return matched, len(p) - matched, len(t) - matched


def cut_f1(pred_cuts: Any, true_cuts: Any, tolerance: int = 5) -> float:
    return f1_score(*match_cuts(pred_cuts, true_cuts, tolerance))


# --- accumulator --------------------------------------------------------------------------
class EditMetrics:
    """Accumulates counts batch by batch; ``compute()`` gives the split's figures.

    ``param_std`` maps track parameter names (``scale``, ``x``, ``y``, ``crop_l`` ...) to
    their std (a float, or one per track) to report MAEs in original units.

    ``counts`` (a flat dict of sums) is the whole state: under DDP each rank's counts
    can be summed and assigned back before ``compute()``.
    ``update(..., cut_mask)``: True where a frame may count as a cut; pass the dataset's
    ``frame_mask`` (False on a video's first frame).
    """

    def __init__(self, threshold: float = 0.5, tolerance: int = 5, param_std: Mapping[str, Any] | None = None):
        self.threshold = threshold
        self.tolerance = tolerance
        self.std: dict[str, Any] = {"scale": None, "position": None, "crop": None}
        if param_std is not None:
            std = {k: torch.as_tensor(np.asarray(v), dtype=torch.float64) for k, v in param_std.items()}
            self.std = {
                "scale": std["scale"],
                "position": torch.stack([std["x"], std["y"]], dim=-1),
                "crop": torch.stack([std[c] for c in CROPS], dim=-1),
            }
        self.reset()

    def reset(self) -> None:
        self.counts: dict[str, float] = dict.fromkeys(
            ["frames", "active_tp", "active_fp", "active_fn", "asset_correct", "asset_total", "cut_tp", "cut_fp",
             "cut_fn", "scale_err", "scale_n", "position_err", "position_n", "crop_err", "crop_n"], 0
        )  # fmt: skip

    @torch.no_grad()
    def update(
        self,
        outputs: Mapping[str, torch.Tensor],
        targets: torch.Tensor,
        prev_track: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        cut_mask: torch.Tensor | None = None,
        true_prev: torch.Tensor | None = None,
    ) -> None:
        """`prev_track` is the previous state the model was given (predicted cuts are
        changes from it); `true_prev` the true previous state (true cuts), which is
        `prev_track` under teacher forcing and must be passed for a roll-out."""
        B, T, N = outputs["active"].shape
        real = torch.ones(B, T, dtype=torch.bool, device=targets.device)
        real = real if padding_mask is None else padding_mask.bool()
        cut_mask = real if cut_mask is None else cut_mask.bool() & real
        true = split_targets(targets.float())
        true_on = true["active"] > 0.5
        pred_on = torch.sigmoid(outputs["active"].float()) > self.threshold
        c = self.counts
        c["frames"] += int(real.sum())
        for k, v in zip(("active_tp", "active_fp", "active_fn"), _active_counts(pred_on, true_on, real)):
            c[k] += v
        correct, total = _asset_counts(outputs["asset"].argmax(-1), true["asset"], true_on, real)
        c["asset_correct"] += correct
        c["asset_total"] += total
        for key in ("scale", "position", "crop"):
            pred, tgt, std = outputs[key].float(), true[key], self.std[key]
            if key == "scale":  # (B, T, N) -> (B, T, N, 1)
                pred, tgt, std = pred.unsqueeze(-1), tgt.unsqueeze(-1), None if std is None else std.unsqueeze(-1)
            err, n = _abs_error(pred, tgt, true_on, real, std)
            c[f"{key}_err"] += err
            c[f"{key}_n"] += n
        pred_cuts = state_changes(decode_frames(outputs, self.threshold), prev_track) & cut_mask  # (B, T)
        true_cuts = state_changes(targets, prev_track if true_prev is None else true_prev) & cut_mask
        for k, v in zip(("cut_tp", "cut_fp", "cut_fn"), match_cuts(pred_cuts, true_cuts, self.tolerance)):
            c[k] += v

    def compute(self) -> dict[str, float]:
        c = self.counts

        def ratio(a: str, b: str) -> float:
            return c[a] / c[b] if c[b] else 0.0

        def pr(prefix: str) -> tuple[float, float]:
            tp, fp, fn = c[f"{prefix}_tp"], c[f"{prefix}_fp"], c[f"{prefix}_fn"]
            return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)

        ap, ar = pr("active")
        cp, cr = pr("cut")
        return {
            "active_f1": f1_score(c["active_tp"], c["active_fp"], c["active_fn"]),
            "active_precision": ap,
            "active_recall": ar,
            "asset_accuracy": ratio("asset_correct", "asset_total"),
            "scale_mae": ratio("scale_err", "scale_n"),
            "position_mae": ratio("position_err", "position_n"),
            "crop_mae": ratio("crop_err", "crop_n"),
            "cut_f1": f1_score(c["cut_tp"], c["cut_fp"], c["cut_fn"]),
            "cut_precision": cp,
            "cut_recall": cr,
            "true_cuts": int(c["cut_tp"] + c["cut_fn"]),
            "pred_cuts": int(c["cut_tp"] + c["cut_fp"]),
            "frames": int(c["frames"]),
        }
