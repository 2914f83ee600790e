"""MultiTrackLoss: property 17, a slow reference, exclusion of padding and inactive terms, learning."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies.model import baseline_of, batches, edit_outputs, make_batch, model_configs
from trackfusion import schema
from trackfusion.learn.loss import COMPONENTS, MultiTrackLoss
from trackfusion.learn.model import STATE_KEYS, WHICH_KEY, EditTransformer, ModelConfig
from trackfusion.params import LossParams

torch.set_num_threads(1)
WEIGHTS = dict(active=1.0, asset=0.7, scale=0.5, position=0.3, crop=0.2, cut=0.4, cut_pos_weight=3.0, change_weight=1.0)


def reference_cut(outputs: dict, targets: torch.Tensor, prev: torch.Tensor, padding: torch.Tensor,
                  has_prev: torch.Tensor, pos_weight: float, key: str = "cut") -> float:
    """The cut term frame by frame: BCE against "the active set or an active track's asset changed"."""
    num = den = 0.0
    B, T = padding.shape
    for b in range(B):
        for t in range(T):
            if not (padding[b, t] and has_prev[b, t]):
                continue
            y = 0.0
            for n in range(targets.shape[-1] // 9):
                cur, old = targets[b, t, n * 9 : n * 9 + 2].tolist(), prev[b, t, n * 9 : n * 9 + 2].tolist()
                on, was = cur[0] > 0.5, old[0] > 0.5
                if on != was or (on and round(cur[1]) != round(old[1])):
                    y = 1.0
            z = float(outputs[key][b, t])
            w = pos_weight if y else 1.0
            num += w * (max(z, 0) - z * y + math.log1p(math.exp(-abs(z))))
            den += w
    return num / den if den else 0.0


def reference_state(outputs: dict, targets: torch.Tensor, padding: torch.Tensor) -> float:
    """The content-only state heads' term element by element (no previous frame: no change term)."""
    B, T, N = outputs["state_active"].shape
    bce = ce = 0.0
    n_bce = n_ce = 0
    for b, t, n in ((b, t, n) for b in range(B) for t in range(T) for n in range(N) if padding[b, t]):
        y, z = float(targets[b, t, n * 9]), float(outputs["state_active"][b, t, n])
        bce += max(z, 0) - z * y + math.log1p(math.exp(-abs(z)))
        n_bce += 1
        if y > 0.5:
            logits = outputs["state_asset"][b, t, n].double()
            ce += float(torch.logsumexp(logits, 0) - logits[int(targets[b, t, n * 9 + 1])])
            n_ce += 1
    return (bce / n_bce if n_bce else 0.0) + (ce / n_ce if n_ce else 0.0)


def reference_loss(outputs: dict, targets: torch.Tensor, padding: torch.Tensor, w: dict) -> dict[str, float]:
    """Element by element, straight from SPEC 5 (no previous frame given: no cut term)."""
    B, T, N = outputs["active"].shape
    sums = dict.fromkeys(COMPONENTS, 0.0)
    counts = dict.fromkeys(COMPONENTS, 0)
    for b in range(B):
        for t in range(T):
            if not padding[b, t]:
                continue
            for n in range(N):
                row = targets[b, t, n * 9 : (n + 1) * 9].tolist()
                z, y = float(outputs["active"][b, t, n]), row[0]
                sums["active"] += max(z, 0) - z * y + math.log1p(math.exp(-abs(z)))
                counts["active"] += 1
                if y <= 0.5:
                    continue
                logits = outputs["asset"][b, t, n].double()
                sums["asset"] += float(torch.logsumexp(logits, 0) - logits[int(row[1])])
                counts["asset"] += 1
                sums["scale"] += (float(outputs["scale"][b, t, n]) - row[2]) ** 2
                counts["scale"] += 1
                for i in range(2):
                    sums["position"] += (float(outputs["position"][b, t, n, i]) - row[3 + i]) ** 2
                    counts["position"] += 1
                for i in range(4):
                    sums["crop"] += (float(outputs["crop"][b, t, n, i]) - row[5 + i]) ** 2
                    counts["crop"] += 1
    out = {k: sums[k] / counts[k] if counts[k] else 0.0 for k in COMPONENTS}
    out["cut"] = 0.0
    out["state"] = reference_state(outputs, targets, padding) if "state_active" in outputs else 0.0
    out["total"] = sum(w.get(k, 1.0) * out[k] for k in COMPONENTS)
    return out


@given(inp=edit_outputs())
def test_loss_matches_reference(inp) -> None:
    outputs, targets, padding = inp
    loss = MultiTrackLoss(WEIGHTS)(outputs, targets, padding)
    ref = reference_loss(outputs, targets, padding, WEIGHTS)
    assert set(loss) == {"total", *COMPONENTS}
    for k, v in ref.items():
        assert float(loss[k]) == pytest.approx(v, rel=1e-4, abs=1e-5), k


@given(inp=edit_outputs(), seed=st.integers(0, 2**16))
def test_cut_term_matches_reference(inp, seed: int) -> None:
    outputs, targets, padding = inp
    gen = torch.Generator().manual_seed(seed)
    B, T, N = outputs["active"].shape
    prev = torch.cat([targets[:, :1], targets[:, :-1]], dim=1).clone()  # the true previous frames
    flip = torch.rand(B, T, N, generator=gen) < 0.2  # ... with some tracks switched the other way
    prev4 = prev.reshape(B, T, N, 9)
    prev4[..., 0] = torch.where(flip, 1 - prev4[..., 0].round(), prev4[..., 0])
    outputs = {**outputs, "cut": torch.randn(B, T, generator=gen) * 3}
    has_prev = torch.rand(B, T, generator=gen) < 0.8
    loss = MultiTrackLoss(WEIGHTS)(outputs, targets, padding, prev, has_prev)
    ref = reference_cut(outputs, targets, prev, padding, has_prev, WEIGHTS["cut_pos_weight"])
    assert float(loss["cut"]) == pytest.approx(ref, rel=1e-4, abs=1e-5)
    # a model with a layout veto: its logit before the veto gets the same term, added
    outputs["cut_content"] = torch.randn(B, T, generator=gen) * 3
    vetoed = MultiTrackLoss(WEIGHTS)(outputs, targets, padding, prev, has_prev)
    ref += reference_cut(outputs, targets, prev, padding, has_prev, WEIGHTS["cut_pos_weight"], key="cut_content")
    assert float(vetoed["cut"]) == pytest.approx(ref, rel=1e-4, abs=1e-5)


@given(inp=edit_outputs(), seed=st.integers(0, 2**16))
def test_loss_ignores_padding_and_inactive_parameter_terms(inp, seed: int) -> None:
    outputs, targets, padding = inp
    loss_fn = MultiTrackLoss(WEIGHTS)
    loss = loss_fn(outputs, targets, padding)
    gen = torch.Generator().manual_seed(seed)
    B, T, N = outputs["active"].shape
    t4 = targets.reshape(B, T, N, 9).clone()
    active = t4[..., 0] > 0.5
    # garbage in the parameter columns of inactive tracks (incl. invalid asset ids) ...
    garbage = torch.randn(B, T, N, 8, generator=gen) * 1e3
    t4[..., 1:] = torch.where(active.unsqueeze(-1), t4[..., 1:], garbage)
    # ... and anything at all on padded frames, also in the outputs
    t4[~padding] = torch.randn(t4[~padding].shape, generator=gen) * 1e3
    changed_out = {}
    for k, v in outputs.items():
        keep = padding.reshape(B, T, *([1] * (v.dim() - 2)))  # (B, T, 1, ...)
        changed_out[k] = torch.where(keep, v, torch.randn(v.shape, generator=gen) * 1e3)
    changed = loss_fn(changed_out, t4.reshape(B, T, N * 9), padding)
    for k in loss:
        torch.testing.assert_close(changed[k], loss[k], msg=k)
    assert all(torch.isfinite(v) for v in changed.values())


def test_nothing_counts_gives_zero_not_nan() -> None:
    outputs = {"active": torch.randn(1, 3, 2, requires_grad=True), "asset": torch.randn(1, 3, 2, 4),
               "scale": torch.randn(1, 3, 2), "position": torch.randn(1, 3, 2, 2),
               "crop": torch.randn(1, 3, 2, 4)}  # fmt: skip
    targets = torch.zeros(1, 3, 18)  # nothing active
    loss = MultiTrackLoss()(outputs, targets, torch.ones(1, 3, dtype=torch.bool))
    assert all(float(loss[k]) == 0 for k in ("asset", "scale", "position", "crop"))
    none = MultiTrackLoss()(outputs, targets, torch.zeros(1, 3, dtype=torch.bool))  # all padding
    assert all(float(v.detach()) == 0 for v in none.values())
    none["total"].backward()
    assert torch.isfinite(outputs["active"].grad).all()


def test_weights_from_params_or_dict() -> None:
    assert MultiTrackLoss(LossParams(asset=2.0)).weights["asset"] == 2.0
    assert MultiTrackLoss({"crop": 0.0}).weights == {**MultiTrackLoss().weights, "crop": 0.0}
    with pytest.raises(ValueError, match="unknown loss weight 'cropp'"):
        MultiTrackLoss({"cropp": 1.0})
    with pytest.raises(ValueError, match=r"targets: expected \(1, 3, 18\), got \(1, 3, 180\)"):
        MultiTrackLoss()({"active": torch.zeros(1, 3, 2)}, torch.zeros(1, 3, 180))


@given(config=model_configs(), data=st.data())
def test_property_17_same_loss_for_both_models(config: ModelConfig, data: st.DataObject) -> None:
    baseline = EditTransformer(baseline_of(config)).eval()
    full = EditTransformer(config).eval()
    b = data.draw(batches(config))
    loss_fn = MultiTrackLoss(WEIGHTS)
    with torch.no_grad():
        outputs = {"baseline": baseline.forward_batch(b), "multimodal": full.forward_batch(b)}
    for kind, out in outputs.items():  # both kinds' outputs go through the very same function, which
        ref = reference_loss(out, b["targets"], b["padding_mask"], WEIGHTS)  # equals an independent reference
        got = loss_fn(out, b["targets"], b["padding_mask"])
        assert float(got["total"]) == pytest.approx(ref["total"], rel=1e-4), kind
    # the same heads: equal predictions, equal loss (a layout veto adds its logit before the veto; the toggle
    # head is fitted apart, never by this loss)
    assert set(outputs["baseline"]) == set(outputs["multimodal"]) - {"cut_content", *STATE_KEYS, WHICH_KEY, "toggle"}


@pytest.mark.parametrize("kind", ["baseline", "concat", "add", "gated", "attention"])
def test_few_optimizer_steps_lower_the_loss(kind: str) -> None:
    torch.manual_seed(0)
    multimodal = kind != "baseline"
    config = ModelConfig(kind="multimodal" if multimodal else "baseline", fusion_type=kind if multimodal else "gated",
                         d_model=16, nhead=2, num_encoder_layers=1, dim_feedforward=32, dropout=0.0)  # fmt: skip
    model = EditTransformer(config)
    b = make_batch(model.config, B=2, T=12, seed=0)
    loss_fn = MultiTrackLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = loss_fn(model.forward_batch(b), b["targets"], b["padding_mask"])["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


@given(seed=st.integers(0, 2**16), w=st.floats(1.0, 50.0))
def test_change_weight_is_a_weighted_mean_over_changed_track_frames(seed: int, w: float) -> None:
    """Track-frames whose active flag flips weigh `change_weight` in the active BCE; others 1."""
    g = torch.Generator().manual_seed(seed)
    B, T, N = 2, 5, schema.NUM_TRACKS
    targets = torch.zeros(B, T, schema.TRACK_WIDTH)
    prev = torch.zeros(B, T, schema.TRACK_WIDTH)
    targets[..., schema.track_columns("active")] = (torch.rand(B, T, N, generator=g) < 0.3).float()
    prev[..., schema.track_columns("active")] = (torch.rand(B, T, N, generator=g) < 0.3).float()
    outputs = {
        "active": torch.randn(B, T, N, generator=g),
        "asset": torch.randn(B, T, N, schema.NUM_ASSET_CLASSES, generator=g),
        "scale": torch.randn(B, T, N, generator=g),
        "position": torch.randn(B, T, N, 2, generator=g),
        "crop": torch.randn(B, T, N, 4, generator=g),
    }
    got = MultiTrackLoss(LossParams(change_weight=w))(outputs, targets, None, prev)["active"]
    t = targets[..., schema.track_columns("active")]
    weight = 1.0 + (w - 1.0) * (t != prev[..., schema.track_columns("active")]).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(outputs["active"], t, reduction="none")
    torch.testing.assert_close(got, (bce * weight).sum() / weight.sum())
    plain = MultiTrackLoss(LossParams(change_weight=1.0))(outputs, targets, None, prev)["active"]
    torch.testing.assert_close(plain, bce.mean())


@given(inp=edit_outputs(), seed=st.integers(0, 2**16), window=st.sampled_from([1, 2, 5]))
def test_the_which_term_is_each_tracks_change_bce_on_the_true_cuts_only(inp, seed: int, window: int) -> None:
    """Given that a frame is a cut, which tracks change there or in the window - 1 frames after it: no other
    frame (nor padding, nor a first frame) counts, as a cut or as a change ahead."""
    outputs, targets, padding = inp
    gen = torch.Generator().manual_seed(seed)
    B, T, N = outputs["active"].shape
    prev = torch.cat([targets[:, :1], targets[:, :-1]], dim=1).clone()
    flip = torch.rand(B, T, N, generator=gen) < 0.2
    prev4 = prev.reshape(B, T, N, 9)
    prev4[..., 0] = torch.where(flip, 1 - prev4[..., 0].round(), prev4[..., 0])
    has_prev = torch.rand(B, T, generator=gen) < 0.8
    outputs = {**outputs, "which": torch.randn(B, T, N, generator=gen) * 3}
    weights = {**WEIGHTS, "which_window": window}
    got = float(MultiTrackLoss(weights)(outputs, targets, padding, prev, has_prev)["which"])

    def changes(b: int, t: int) -> list[bool]:
        if not (padding[b, t] and has_prev[b, t]):
            return [False] * N
        out = []
        for n in range(N):
            cur, old = targets[b, t, n * 9 : n * 9 + 2].tolist(), prev[b, t, n * 9 : n * 9 + 2].tolist()
            on, was = cur[0] > 0.5, old[0] > 0.5
            out.append(on != was or (on and round(cur[1]) != round(old[1])))
        return out

    num, den = 0.0, 0
    for b, t in ((b, t) for b in range(B) for t in range(T)):
        if not any(changes(b, t)):
            continue  # not a cut: the which head says nothing about it
        ahead = [changes(b, u) for u in range(t, min(t + window, T))]
        for n in range(N):
            y = float(any(c[n] for c in ahead))
            z = float(outputs["which"][b, t, n])
            num += max(z, 0) - z * y + math.log1p(math.exp(-abs(z)))
            den += 1
    assert got == pytest.approx(num / den if den else 0.0, rel=1e-4, abs=1e-5)
    assert float(MultiTrackLoss(weights)(outputs, targets, padding)["which"]) == 0.0  # no previous frame: no cuts


@given(inp=edit_outputs(), seed=st.integers(0, 2**16))
def test_the_state_term_is_the_content_heads_bce_and_ce_and_no_other_term_reads_them(inp, seed) -> None:
    outputs, targets, padding = inp
    B, T, N = outputs["active"].shape
    K = outputs["asset"].shape[-1]
    gen = torch.Generator().manual_seed(seed)
    with_state = {**outputs, "state_active": torch.randn(B, T, N, generator=gen),
                  "state_change": torch.randn(B, T, N, generator=gen), "state_asset": torch.randn(B, T, N, K, generator=gen)}
    loss, plain = MultiTrackLoss(WEIGHTS)(with_state, targets, padding), MultiTrackLoss(WEIGHTS)(outputs, targets, padding)
    assert float(plain["state"]) == 0.0
    for k in (k for k in COMPONENTS if k != "state"):
        assert float(loss[k]) == pytest.approx(float(plain[k]), abs=1e-6)
    assert float(loss["state"]) == pytest.approx(reference_state(with_state, targets, padding), rel=1e-4, abs=1e-5)
