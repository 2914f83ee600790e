"""Edit metrics over whole splits (SPEC 6), vectorised over batches and tracks.

Track-level figures:
- ``active_f1``: F1 of the predicted active flags (sigmoid(logit) > active_threshold) over all
  real track-frames.
- ``asset_accuracy``: argmax asset == true asset, on true-active track-frames.
- ``scale_mae``, ``position_mae``, ``crop_mae``: mean absolute error of the predicted
  values on true-active track-frames (x and y, or the four crops, pooled). With
  ``std`` / ``param_std`` the errors are multiplied by each parameter's std first, so a
  model trained on z-scored parameters reports in original units (percent).

Cuts are not counted here: ``VideoLayoutCuts`` (below) stitches the evaluation windows back
into whole videos and scores cut events with ``trackfusion.cuts``, the one definition
and the one score of the project.

Conventions: an F1 whose precision and recall are both undefined (nothing predicted,
nothing true) is 1.0; an accuracy or MAE over nothing is 0.0. Inputs may be numpy
arrays or torch tensors.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from trackfusion import cuts, schema
from trackfusion.cuts import f1_score
from trackfusion.learn.loss import split_targets
from trackfusion.learn.model import decode_frames



def _t(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _counted(mask: Any, shape: torch.Size, device: torch.device) -> torch.Tensor:
    """(…, N) track-frame mask from an optional frame mask (…)."""
    if mask is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    return _t(mask).to(device).bool().unsqueeze(-1).expand(shape)


# --- counts (shared by the functions and the accumulator) ---------------------------
def _active_counts(pred: Any, true: Any, counted: Any = None) -> tuple[int, int, int]:
    pred, true = _t(pred).bool(), _t(true).bool()
    m = _counted(counted, true.shape, true.device)
    tp = int((pred & true & m).sum())
    fp = int((pred & ~true & m).sum())
    fn = int((~pred & true & m).sum())
    return tp, fp, fn


def _asset_counts(pred: Any, true: Any, true_active: Any, counted: Any = None) -> tuple[int, int]:
    pred, true = _t(pred).long(), _t(true).round().long()
    on = _t(true_active).bool() & _counted(counted, true.shape, true.device)
    return int(((pred == true) & on).sum()), int(on.sum())


def _abs_error(pred: Any, true: Any, true_active: Any, counted: Any = None, std: Any = None) -> tuple[float, int]:
    """Sum of |pred - true| (* std) over true-active track-frames and the number of values summed.

    pred/true are (…, N, P); std broadcasts to (N, P) or (P,).
    """
    pred, true = _t(pred).double(), _t(true).double()
    on = _t(true_active).bool() & _counted(counted, true.shape[:-1], true.device)  # (…, N)
    err = (pred - true).abs()  # (…, N, P)
    if std is not None:
        err = err * _t(std).double().to(err.device)
    err = torch.where(on.unsqueeze(-1), err, torch.zeros_like(err))
    return float(err.sum()), int(on.sum()) * true.shape[-1]


# --- public per-metric functions ------------------------------------------------------
def active_f1(pred_active: Any, true_active: Any, counted: Any = None) -> float:
    """F1 of active flags (…, N) over real track-frames; counted (…) True = real frame."""
    return f1_score(*_active_counts(pred_active, true_active, counted))


def asset_accuracy(pred_asset: Any, true_asset: Any, true_active: Any, counted: Any = None) -> float:
    correct, total = _asset_counts(pred_asset, true_asset, true_active, counted)
    return correct / total if total else 0.0


def _mae(*args: Any) -> float:
    total, count = _abs_error(*args)
    return total / count if count else 0.0


def scale_mae(pred: Any, true: Any, true_active: Any, counted: Any = None, std: Any = None) -> float:
    """pred/true (…, N); std a scalar or (N,)."""
    std = None if std is None else _t(std).double().unsqueeze(-1)
    return _mae(_t(pred).unsqueeze(-1), _t(true).unsqueeze(-1), true_active, counted, std)


def position_mae(pred: Any, true: Any, true_active: Any, counted: Any = None, std: Any = None) -> float:
    """pred/true (…, N, 2) as (x, y); std (2,) or (N, 2)."""
    return _mae(pred, true, true_active, counted, std)


def crop_mae(pred: Any, true: Any, true_active: Any, counted: Any = None, std: Any = None) -> float:
    """pred/true (…, N, 4) as (l, r, t, b); std (4,) or (N, 4)."""
    return _mae(pred, true, true_active, counted, std)


# --- accumulator --------------------------------------------------------------------------
class EditMetrics:
    """Accumulates counts batch by batch; ``compute()`` gives the split's figures.

    ``param_std`` maps track parameter names (``scale``, ``x``, ``y``, ``crop_l`` ...) to
    their std (a float, or one per track) to report MAEs in original units.

    ``counts`` (a flat dict of sums) is the whole state: under DDP each rank's counts
    can be summed and assigned back before ``compute()``.
    """

    def __init__(self, active_threshold: float = 0.5, param_std: Mapping[str, Any] | None = None):
        self.active_threshold = active_threshold
        self.std: dict[str, Any] = {"scale": None, "position": None, "crop": None}
        if param_std is not None:
            std = {k: torch.as_tensor(np.asarray(v), dtype=torch.float64) for k, v in param_std.items()}
            self.std = {
                "scale": std["scale"],
                "position": torch.stack([std["x"], std["y"]], dim=-1),
                "crop": torch.stack([std[c] for c in schema.CROPS], dim=-1),
            }
        self.reset()

    def reset(self) -> None:
        self.counts: dict[str, float] = dict.fromkeys(
            ["frames", "active_tp", "active_fp", "active_fn", "asset_correct", "asset_total",
             "scale_err", "scale_n", "position_err", "position_n", "crop_err", "crop_n"], 0
        )  # fmt: skip

    @torch.no_grad()
    def update(
        self,
        outputs: Mapping[str, torch.Tensor],
        targets: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
    ) -> None:
        B, T, N = outputs["active"].shape
        real = torch.ones(B, T, dtype=torch.bool, device=targets.device)
        real = real if padding_mask is None else padding_mask.bool()
        true = split_targets(targets.float())
        true_on = true["active"] > 0.5
        pred_on = torch.sigmoid(outputs["active"].float()) > self.active_threshold
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

    def compute(self) -> dict[str, float | None]:
        """The figures; None where nothing was measured (no frames, no active track-frames),
        never a perfect score or a zero error over nothing."""
        c = self.counts
        if not c["frames"]:
            return {k: None for k in ("active_f1", "active_precision", "active_recall", "asset_accuracy",
                                      "scale_mae", "position_mae", "crop_mae")} | {"frames": 0}  # fmt: skip

        def ratio(a: str, b: str) -> float | None:
            return c[a] / c[b] if c[b] else None

        def pr(prefix: str) -> tuple[float, float]:
            tp, fp, fn = c[f"{prefix}_tp"], c[f"{prefix}_fp"], c[f"{prefix}_fn"]
            return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)

        ap, ar = pr("active")
        return {
            "active_f1": f1_score(c["active_tp"], c["active_fp"], c["active_fn"]),
            "active_precision": ap,
            "active_recall": ar,
            "asset_accuracy": ratio("asset_correct", "asset_total"),
            "scale_mae": ratio("scale_err", "scale_n"),
            "position_mae": ratio("position_err", "position_n"),
            "crop_mae": ratio("crop_err", "crop_n"),
            "frames": int(c["frames"]),
        }


# --- whole-video cut events ------------------------------------------------------------
class VideoLayoutCuts:
    """Stitches windowed teacher-forced outputs back into whole videos and scores their layout
    cuts (a change of the layout, ``trackfusion.cuts``; a jump cut would be another kind).

    Evaluation windows cover each video, each frame scored in one of them (the batch's
    ``scored``, all real frames without it); ``add`` stores, per scored frame, the cut probability,
    whether the frame is a true cut, the true previous layout and the layout the model
    would switch to if it fired there. ``score(decoding)`` then decodes each whole video
    with a ``cuts.CutDecoding`` and matches events over whole videos, so a cut
    across a window boundary counts once and windows never cut a video's score apart.
    ``state`` is the whole state (plain arrays per video) so ranks can merge theirs.
    """

    def __init__(self, active_threshold: float = 0.5, tolerance: int = cuts.TOLERANCE):
        self.active_threshold = active_threshold
        self.tolerance = tolerance
        self.state: dict[int, dict[int, dict[str, np.ndarray]]] = {}  # video -> window start -> arrays

    @torch.no_grad()
    def add(self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]) -> None:
        targets, prev = batch["targets"].float(), batch["prev_track"].float()
        real = batch["padding_mask"].bool()
        has_prev = batch.get("has_prev")
        counts = real if has_prev is None else real & has_prev.bool()
        prob = torch.sigmoid(outputs["cut"].float()) * counts  # never a cut on a video's first frame
        fired = decode_frames(outputs, self.active_threshold, prev, torch.ones_like(real))
        rows = {
            "prob": prob,
            "true": cuts.cut_flags(targets, prev) & counts,
            "true_layout": cuts.layout(targets),
            "prev_layout": cuts.layout(prev),
            "fired_layout": cuts.layout(fired),
            "counts": counts,
        }
        rows = {k: v.cpu().numpy() for k, v in rows.items()}
        keep = (real if "scored" not in batch else real & batch["scored"].bool()).cpu().numpy()  # (B, T)
        for i, (v, s) in enumerate(zip(batch["video_index"].tolist(), batch["start"].tolist())):
            self.state.setdefault(int(v), {})[int(s)] = {k: a[i][keep[i]] for k, a in rows.items()}

    def merge(self, states: list[dict[int, dict[int, dict[str, np.ndarray]]]]) -> None:
        for state in states:
            for v, windows in state.items():
                self.state.setdefault(v, {}).update(windows)

    def videos(self) -> dict[int, dict[str, np.ndarray]]:
        """Per video, the window arrays laid end to end in frame order."""
        out = {}
        for v, windows in sorted(self.state.items()):
            parts = [windows[s] for s in sorted(windows)]
            out[v] = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return out

    def tune(self) -> cuts.CutDecoding:
        """The cut decoding with the best F1 here (call on validation only)."""
        videos = self.videos()
        return cuts.CutDecoding.from_dict(cuts.tune_firing(
            [d["prob"] for d in videos.values()], [cuts.cut_events(d["true"]) for d in videos.values()],
            tolerance=self.tolerance))  # fmt: skip

    def score(self, decoding: cuts.CutDecoding) -> dict[str, float]:
        """cut_f1 (precision, recall, counts) and layout_accuracy under this decoding."""
        score = cuts.CutScore(self.tolerance)
        same = total = 0
        for d in self.videos().values():
            events = decoding.events(d["prob"])
            score.add(events, cuts.cut_events(d["true"]), len(d["prob"]))
            fired = np.zeros(len(d["prob"]), bool)
            fired[events] = True
            pred = np.where(fired[:, None], d["fired_layout"], d["prev_layout"])
            agree, counted = cuts.layout_agreement(pred, d["true_layout"], d["counts"])  # first frame: given
            same, total = same + agree, total + counted
        return {**score.figures(), "layout_accuracy": same / total if total else None,
                "cut_threshold": float(decoding.threshold), "cut_spacing": int(decoding.spacing)}  # fmt: skip
