"""ModalityEmbedding and ModalityFusion: properties 11, 12, 13, 32 and mask handling."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies.model import batches, model_configs
from trackfusion.learn.fusion import ModalityEmbedding, ModalityFusion
from trackfusion.params import FUSION_TYPES
from trackfusion.learn.model import EditTransformer, ModelConfig, with_change

torch.set_num_threads(1)


@st.composite
def fusion_inputs(draw: st.DrawFn, *, d_choices=(8, 12, 16)) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, T, 3, D) and mask (B, T, 3), including frames with nothing available."""
    B, T, D = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.sampled_from(d_choices))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    x = torch.randn(B, T, 3, D, generator=gen)
    mask = torch.rand(B, T, 3, generator=gen) < draw(st.floats(0.0, 1.0))
    return x, mask


def _fusion(fusion_type: str, D: int, seed: int, nhead: int = 1) -> ModalityFusion:
    torch.manual_seed(seed)
    return ModalityFusion(D, 3, fusion_type, nhead=nhead).eval()


@given(input_dim=st.integers(1, 40), d_model=st.integers(1, 16), seed=st.integers(0, 2**16))
def test_property_11_embedding_outputs_d_model(input_dim: int, d_model: int, seed: int) -> None:
    torch.manual_seed(seed)
    emb = ModalityEmbedding(input_dim, d_model, dropout=0.5).eval()
    x = torch.randn(2, 5, input_dim)
    out = emb(x)
    assert out.shape == (2, 5, d_model)
    # it is the linear map to d_model (dropout is off in eval)
    torch.testing.assert_close(out, x @ emb.proj.weight.T + emb.proj.bias)


@given(config=model_configs(), data=st.data())
def test_property_11_every_model_embedding_outputs_d_model(config: ModelConfig, data: st.DataObject) -> None:
    model = EditTransformer(config).eval()
    batch = data.draw(batches(model.config))
    B, T = batch["prev_track"].shape[:2]
    D = config.d_model
    avail = batch["modality_mask"].bool()
    assert model.audio_embed(with_change(batch["audio"], avail[..., 0])).shape == (B, T, D)
    assert model.visual_embed(with_change(batch["visual"], avail[..., 1])).shape == (B, T, D)
    assert model.track_embed(batch["prev_track"]).shape == (B, T, D)
    fused, _ = model.embed(batch["audio"], batch["visual"], batch["prev_track"], batch["modality_mask"])
    assert fused.shape == (B, T, D)


@given(inp=fusion_inputs(), logits=st.lists(st.floats(-3, 3), min_size=3, max_size=3))
def test_property_12_additive_fusion_weighted_sum(inp, logits) -> None:
    x, mask = inp
    fusion = _fusion("add", x.shape[-1], 0)
    with torch.no_grad():
        fusion.weight_logits.copy_(torch.tensor(logits))
    fused, w = fusion.fuse(x, mask)
    # hand computation: softmax of the learned logits over the available modalities of each frame
    B, T = mask.shape[:2]
    for b in range(B):
        for t in range(T):
            avail = [m for m in range(3) if mask[b, t, m]]
            expected = torch.zeros(x.shape[-1])
            weights = torch.zeros(3)
            if avail:
                e = torch.exp(torch.tensor([logits[m] for m in avail], dtype=torch.float64))
                for m, wm in zip(avail, (e / e.sum()).tolist()):
                    weights[m] = wm
                    expected += wm * x[b, t, m]
            torch.testing.assert_close(w[b, t], weights, atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(fused[b, t], expected, atol=1e-5, rtol=1e-5)


@given(inp=fusion_inputs(), nhead=st.sampled_from([1, 2, 4]), seed=st.integers(0, 2**16))
def test_property_13_attention_weights_sum_to_one_before_positional(inp, nhead: int, seed: int) -> None:
    x, mask = inp
    fusion = _fusion("attention", x.shape[-1], seed, nhead)
    fused, w = fusion.fuse(x, mask)  # w (B, T, 3 queries, 3 keys)
    assert torch.isfinite(fused).all() and torch.isfinite(w).all()
    any_avail = mask.any(-1)  # (B, T)
    sums = w.sum(-1)  # over keys
    torch.testing.assert_close(sums, torch.ones_like(sums), atol=1e-5, rtol=0)
    # unavailable keys get no weight (frames with something available)
    blocked = (~mask).unsqueeze(2) & any_avail[..., None, None]
    assert (w[blocked.expand_as(w)] == 0).all()
    # a frame with nothing available fuses to zero
    assert (fused[~any_avail] == 0).all()
    # per frame: fusing each frame on its own gives the same weights and output
    for t in range(x.shape[1]):
        f1, w1 = fusion.fuse(x[:, t : t + 1], mask[:, t : t + 1])
        torch.testing.assert_close(w1, w[:, t : t + 1], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(f1, fused[:, t : t + 1], atol=1e-6, rtol=1e-5)


@given(config=model_configs(fusion_types=("attention",)), data=st.data())
def test_property_13_model_attention_fusion_precedes_positional_encoding(config: ModelConfig, data: st.DataObject) -> None:
    """In the model, a frame's fusion weights do not depend on its position in the window.

    A frame's embedding reads its own content and its change from the previous frame, so
    shifting the window by one frame shifts the weights of every frame that keeps its
    predecessor (all but the first two of the shifted window).
    """
    model = EditTransformer(config).eval()
    b = data.draw(batches(model.config, max_len=8))
    _, w = model.embed(b["audio"], b["visual"], b["prev_track"], b["modality_mask"])
    sums = w.sum(-1)
    torch.testing.assert_close(sums, torch.ones_like(sums), atol=1e-5, rtol=0)
    rolled = {k: torch.roll(b[k], 1, dims=1) for k in ("audio", "visual", "prev_track", "modality_mask")}
    _, w_rolled = model.embed(rolled["audio"], rolled["visual"], rolled["prev_track"], rolled["modality_mask"])
    torch.testing.assert_close(w_rolled[:, 2:], w[:, 1:-1], atol=1e-6, rtol=1e-5)


@given(inp=fusion_inputs(), seed=st.integers(0, 2**16))
def test_property_32_gates_in_unit_interval_and_sum(inp, seed: int) -> None:
    x, mask = inp
    fusion = _fusion("gated", x.shape[-1], seed)
    fused, gates = fusion.fuse(x, mask)
    assert gates.shape == x.shape
    assert ((gates >= 0) & (gates <= 1)).all()
    assert (gates[~mask] == 0).all()
    # hand computation: gate_m = sigmoid(W_m e_m + b_m) from the modality's own embedding
    expected = torch.zeros_like(fused)
    for m, lin in enumerate(fusion.gates):
        g = torch.sigmoid(x[:, :, m] @ lin.weight.T + lin.bias) * mask[..., m : m + 1]
        torch.testing.assert_close(gates[:, :, m], g, atol=1e-6, rtol=1e-5)
        expected += g * x[:, :, m]
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fusion_type", FUSION_TYPES)
@given(inp=fusion_inputs())
def test_masked_modalities_do_not_affect_fusion(fusion_type: str, inp) -> None:
    x, mask = inp
    fusion = _fusion(fusion_type, x.shape[-1], 1, nhead=2 if x.shape[-1] % 2 == 0 else 1)
    fused = fusion(x, mask)
    noise = torch.randn_like(x) * 100
    fused_noisy = fusion(torch.where(mask.unsqueeze(-1), x, noise), mask)
    assert torch.isfinite(fused).all()
    torch.testing.assert_close(fused_noisy, fused, atol=1e-5, rtol=1e-5)


def test_all_masked_frame_has_no_nan_and_gradients_are_finite() -> None:
    for fusion_type in FUSION_TYPES:
        fusion = ModalityFusion(8, 3, fusion_type, nhead=2)
        x = torch.randn(1, 2, 3, 8, requires_grad=True)
        mask = torch.tensor([[[False, False, False], [True, False, True]]])
        out = fusion(x, mask)
        out.sum().backward()
        assert torch.isfinite(out).all() and torch.isfinite(x.grad).all(), fusion_type
        assert (x.grad[0, 0] == 0).all(), fusion_type


def test_unknown_fusion_type_names_allowed_values() -> None:
    with pytest.raises(ValueError, match="concat, add, gated, attention"):
        ModalityFusion(8, 3, "sum")
