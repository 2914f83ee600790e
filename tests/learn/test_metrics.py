"""Edit metrics against slow reference implementations."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies.model import edit_outputs
from tests.strategies.reference import ref_cut, ref_f1, ref_max_matching, ref_state
from trackfusion.learn.metrics import (
    EditMetrics,
    active_f1,
    asset_accuracy,
    crop_mae,
    position_mae,
    scale_mae,
)

torch.set_num_threads(1)


@given(inp=edit_outputs(), threshold=st.floats(0.05, 0.95))
def test_track_metrics_match_reference(inp, threshold: float) -> None:
    outputs, targets, padding = inp
    B, T, N = outputs["active"].shape
    t4 = targets.reshape(B, T, N, 9)
    pred_on = torch.sigmoid(outputs["active"]) > threshold
    true_on = t4[..., 0] > 0.5
    pred_asset = outputs["asset"].argmax(-1)
    std = {"scale": 2.0, "position": np.array([3.0, 4.0]), "crop": np.array([1.0, 2.0, 3.0, 5.0])}
    tp = fp = fn = correct = total = 0
    err = {"scale": 0.0, "position": 0.0, "crop": 0.0}
    n = dict.fromkeys(err, 0)
    for b, t, k in np.ndindex(B, T, N):
        if not padding[b, t]:
            continue
        p, y = bool(pred_on[b, t, k]), bool(true_on[b, t, k])
        tp, fp, fn = tp + (p and y), fp + (p and not y), fn + (y and not p)
        if y:
            correct += int(pred_asset[b, t, k]) == int(t4[b, t, k, 1])
            total += 1
            err["scale"] += abs(float(outputs["scale"][b, t, k]) - float(t4[b, t, k, 2])) * std["scale"]
            for i in range(2):
                err["position"] += abs(float(outputs["position"][b, t, k, i] - t4[b, t, k, 3 + i])) * std["position"][i]
            for i in range(4):
                err["crop"] += abs(float(outputs["crop"][b, t, k, i] - t4[b, t, k, 5 + i])) * std["crop"][i]
            n["scale"], n["position"], n["crop"] = n["scale"] + 1, n["position"] + 2, n["crop"] + 4
    assert active_f1(pred_on, true_on, padding) == pytest.approx(ref_f1(tp, fp, fn))
    assert asset_accuracy(pred_asset, t4[..., 1], true_on, padding) == pytest.approx(correct / total if total else 0.0)
    mae = {k: err[k] / n[k] if n[k] else 0.0 for k in err}
    assert scale_mae(outputs["scale"], t4[..., 2], true_on, padding, std["scale"]) == pytest.approx(mae["scale"])
    pos = position_mae(outputs["position"], t4[..., 3:5], true_on, padding, std["position"])
    assert pos == pytest.approx(mae["position"])
    assert crop_mae(outputs["crop"], t4[..., 5:], true_on, padding, std["crop"]) == pytest.approx(mae["crop"])
    # numpy inputs give the same figures
    assert active_f1(pred_on.numpy(), true_on.numpy(), padding.numpy()) == pytest.approx(ref_f1(tp, fp, fn))


@given(parts=st.lists(edit_outputs(max_classes=3, max_len=20), min_size=1, max_size=3), data=st.data())
def test_edit_metrics_accumulates_like_reference(parts, data: st.DataObject) -> None:
    N, K = parts[0][0]["asset"].shape[2:]
    parts = [p for p in parts if p[0]["asset"].shape[2:] == (N, K)]
    metrics = EditMetrics(active_threshold=0.5)
    act = [0, 0, 0]
    for outputs, targets, padding in parts:
        metrics.update(outputs, targets, padding)
        on = (torch.sigmoid(outputs["active"]) > 0.5)[padding]
        y = (targets[..., 0::9] > 0.5)[padding]
        act = [act[0] + int((on & y).sum()), act[1] + int((on & ~y).sum()), act[2] + int((~on & y).sum())]
    result = metrics.compute()
    assert "cut_f1" not in result  # cut events are scored over whole videos (VideoLayoutCuts), never per window
    assert result["active_f1"] == pytest.approx(ref_f1(*act))
    assert result["frames"] == sum(int(p[2].sum()) for p in parts)
    assert all(v is None or np.isfinite(v) for v in result.values())  # None: nothing to measure


def test_edit_metrics_param_std_reports_original_units() -> None:
    outputs = {"active": torch.full((1, 2, 1), 5.0), "asset": torch.zeros(1, 2, 1, 3),
               "scale": torch.tensor([[[1.0], [2.0]]]), "position": torch.zeros(1, 2, 1, 2),
               "crop": torch.zeros(1, 2, 1, 4)}  # fmt: skip
    targets = torch.zeros(1, 2, 9)
    targets[..., 0] = 1
    std = {"scale": 10.0, "x": 1.0, "y": 1.0, "crop_l": 1.0, "crop_r": 1.0, "crop_t": 1.0, "crop_b": 1.0}
    m = EditMetrics(param_std=std)
    m.update(outputs, targets, torch.ones(1, 2, dtype=torch.bool))
    r = m.compute()
    assert r["scale_mae"] == pytest.approx(15.0)  # (1 + 2) / 2 * 10
    assert r["asset_accuracy"] == 1.0 and r["active_f1"] == 1.0


def test_edit_metrics_over_no_frames_are_none_not_perfect() -> None:
    """Issue 12: an evaluation over 0 frames was written as active_f1 1.0 and MAE 0.0."""
    figures = EditMetrics().compute()
    assert figures["frames"] == 0
    assert all(v is None for k, v in figures.items() if k != "frames")
    # frames but no truly active track-frame: no asset accuracy or MAE either
    m = EditMetrics()
    outputs = {"active": torch.full((1, 2, 1), -5.0), "asset": torch.zeros(1, 2, 1, 3), "scale": torch.zeros(1, 2, 1),
               "position": torch.zeros(1, 2, 1, 2), "crop": torch.zeros(1, 2, 1, 4)}  # fmt: skip
    m.update(outputs, torch.zeros(1, 2, 9), torch.ones(1, 2, dtype=torch.bool))
    got = m.compute()
    assert got["frames"] == 2 and got["scale_mae"] is None and got["asset_accuracy"] is None
