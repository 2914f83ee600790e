"""Models: properties 10, 16, 19, 31, no leakage of the future, decoding and construction."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies.model import baseline_of, batches, model_configs, random_frames
from trackfusion import schema
from trackfusion.learn import MODEL_KINDS
from trackfusion.learn.model import MODEL_CLASSES, EditTransformer, ModelConfig, build_model, decode_frames, with_change
from trackfusion.params import FUSION_TYPES, params_from_dict

torch.set_num_threads(1)


def _assert_same(a: dict, b: dict, t: int | None = None) -> None:
    for k in a:
        x, y = (a[k], b[k]) if t is None else (a[k][:, : t + 1], b[k][:, : t + 1])
        torch.testing.assert_close(x, y, atol=1e-6, rtol=1e-5, msg=lambda m: f"{k}: {m}")


@given(config=model_configs(), data=st.data())
def test_property_10_accepts_valid_widths(config: ModelConfig, data: st.DataObject) -> None:
    model = EditTransformer(config).eval()
    b = data.draw(batches(model.config))
    B, T = b["prev_track"].shape[:2]
    N, K = config.num_tracks, config.max_asset_classes
    out = model(b["audio"], b["visual"], b["prev_track"], b["padding_mask"], b["modality_mask"])
    expected = {"active": (B, T, N), "asset": (B, T, N, K), "scale": (B, T, N), "position": (B, T, N, 2),
                "crop": (B, T, N, 4), "cut": (B, T)}  # fmt: skip
    if model.veto is not None:  # its cut logit before the layout veto
        expected["cut_content"] = (B, T)
    if model.content_cuts:  # the content-only state heads: each track's active flag, change and asset; which
        expected |= {"state_active": (B, T, N), "state_change": (B, T, N), "state_asset": (B, T, N, K),
                     "which": (B, T, N)}  # fmt: skip
    if model.toggle is not None:  # the toggle head: one logit per toggle track
        expected["toggle"] = (B, T, len(config.toggle_tracks))
    assert {k: tuple(v.shape) for k, v in out.items()} == expected
    assert all(torch.isfinite(v).all() for v in out.values())
    _assert_same(model.forward_batch(b), out)
    # one column too many is refused with both shapes named
    wide = torch.cat([b["visual"], b["visual"][..., :1]], dim=-1)
    with pytest.raises(ValueError, match=rf"visual: expected \(B, T, {config.visual_features}\), got \({B}, {T}, "):
        model(b["audio"], wide, b["prev_track"])


def test_property_10_standard_widths_and_error_message() -> None:
    model = EditTransformer(ModelConfig(d_model=16, nhead=2, num_encoder_layers=1, dim_feedforward=16)).eval()
    out = model(torch.randn(2, 7, 5), torch.randn(2, 7, 522), torch.zeros(2, 7, 180))
    assert out["asset"].shape == (2, 7, 20, 10)
    with pytest.raises(ValueError, match=r"^visual: expected \(B, T, 522\), got \(2, 7, 500\)$"):
        model(torch.randn(2, 7, 5), torch.randn(2, 7, 500), torch.zeros(2, 7, 180))
    with pytest.raises(ValueError, match=r"track: expected \(B, T, 180\), got \(2, 7\)"):
        model(torch.randn(2, 7, 5), torch.randn(2, 7, 522), torch.zeros(2, 7))
    with pytest.raises(ValueError, match=r"d_model \(10\) must be divisible by nhead \(4\)"):
        ModelConfig(d_model=10)
    with pytest.raises(ValueError, match="fusion_type is 'sum'; allowed values: concat"):
        ModelConfig(fusion_type="sum")


@given(config=model_configs(), data=st.data())
def test_property_16_batch_shares_sequence_length(config: ModelConfig, data: st.DataObject) -> None:
    model = EditTransformer(config).eval()
    b = data.draw(batches(model.config, max_len=8))
    B, T = b["prev_track"].shape[:2]
    name = data.draw(st.sampled_from(["audio", "visual", "padding_mask", "modality_mask"]))
    other_T = data.draw(st.integers(1, 10).filter(lambda n: n != T))
    bad = dict(b)
    x = b[name]
    bad[name] = torch.cat([x] * (other_T // T + 1), dim=1)[:, :other_T]  # same content, other length
    actual = "(" + ", ".join(str(d) for d in bad[name].shape) + ")"
    with pytest.raises(ValueError) as err:
        model.forward_batch(bad)
    msg = str(err.value)
    assert msg.startswith(f"{name}: expected ({B}, {T}") and msg.endswith(f"got {actual}"), msg


@pytest.mark.parametrize("flags", [dict(use_audio=False), dict(use_visual=False),
                                   dict(use_audio=False, use_visual=False), dict(kind="baseline")])  # fmt: skip
@given(config=model_configs(), data=st.data())
def test_property_19_disabled_modalities_have_no_influence(flags: dict, config: ModelConfig, data: st.DataObject) -> None:
    model = EditTransformer(dataclasses.replace(config, **flags)).eval()
    b = data.draw(batches(model.config))
    baseline = flags.get("kind") == "baseline"
    off_audio = not flags.get("use_audio", True) or baseline
    off_visual = not flags.get("use_visual", True) or baseline
    assert hasattr(model, "audio_embed") != off_audio and hasattr(model, "visual_embed") != off_visual
    out = model.forward_batch(b)
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    changed = dict(b)
    if off_audio:
        changed["audio"] = torch.randn(b["audio"].shape, generator=gen) * 50
        changed["modality_mask"] = changed["modality_mask"].clone()
        changed["modality_mask"][..., 0] = True
    if off_visual:
        changed["visual"] = torch.randn(b["visual"].shape, generator=gen) * 50
        changed["modality_mask"] = changed["modality_mask"].clone()
        changed["modality_mask"][..., 1] = True
    _assert_same(model.forward_batch(changed), out)
    # and passing the disabled inputs as None changes nothing either
    none = {k: v for k, v in b.items() if not (k == "audio" and off_audio or k == "visual" and off_visual)}
    _assert_same(model.forward_batch(none), out)
    if baseline:
        # the baseline reads the track alone: no content module exists, content inputs may be absent
        assert model.config.kind == "baseline" and not hasattr(model, "fusion") and not hasattr(model, "cut_encoder")
        _assert_same(model(None, None, b["prev_track"], b["padding_mask"]), out)


@given(config=model_configs(), data=st.data())
def test_property_31_masked_features_zero_and_no_effect(config: ModelConfig, data: st.DataObject) -> None:
    """Garbage at masked positions reaches the embeddings as zeros and changes no output
    (issue 13: fed only batches the helper had already zeroed, removing the model's own
    zeroing passed)."""
    model = EditTransformer(config).eval()
    b = data.draw(batches(model.config))
    mm = b["modality_mask"]
    if data.draw(st.booleans()):  # sometimes the track itself is unavailable on some frames
        mm = mm.clone()
        mm[..., 2] = torch.rand(mm.shape[:2]) < 0.7
    out = model(b["audio"], b["visual"], b["prev_track"], b["padding_mask"], mm)
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    noisy = {}
    for i, name in enumerate(("audio", "visual", "prev_track")):
        x = b[name]
        noisy[name] = torch.where(mm[..., i : i + 1], x, torch.randn(x.shape, generator=gen) * 100)
    seen = {}
    hooks = [getattr(model, f"{m}_embed").register_forward_hook(lambda mod, inp, out, m=m: seen.__setitem__(m, inp[0]))
             for m in ("audio", "visual")]  # fmt: skip
    noisy_out = model(noisy["audio"], noisy["visual"], noisy["prev_track"], b["padding_mask"], mm)
    for hook in hooks:
        hook.remove()
    # what reaches the embeddings is zero where the modality is unavailable, whatever the input held
    assert (seen["audio"][~mm[..., 0]] == 0).all() and (seen["visual"][~mm[..., 1]] == 0).all()
    _assert_same(noisy_out, out)


@pytest.mark.parametrize("kind", [*FUSION_TYPES, "baseline"])
@given(data=st.data())
def test_no_leakage_from_future_frames(kind: str, data: st.DataObject) -> None:
    config = data.draw(model_configs(fusion_types=(kind,) if kind != "baseline" else FUSION_TYPES))
    model = EditTransformer(baseline_of(config) if kind == "baseline" else config).eval()
    b = data.draw(batches(model.config, max_len=10))
    T = b["prev_track"].shape[1]
    t = data.draw(st.integers(0, T - 1))
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    future = dict(b)
    for k in ("audio", "visual", "prev_track"):
        x = b[k].clone()
        x[:, t + 1 :] = torch.randn(x[:, t + 1 :].shape, generator=gen) * 10
        future[k] = x
    for k in ("modality_mask", "padding_mask"):
        x = b[k].clone()
        x[:, t + 1 :] = torch.rand(x[:, t + 1 :].shape, generator=gen) < 0.5
        future[k] = x
    _assert_same(model.forward_batch(future), model.forward_batch(b), t)


def test_causal_false_lets_a_frame_read_later_frames() -> None:
    """`ModelConfig.causal` (default True) is the one switch between the two attentions."""
    torch.manual_seed(0)
    config = ModelConfig(kind="baseline", d_model=8, nhead=2, num_encoder_layers=1, dim_feedforward=8, dropout=0.0)
    track = random_frames(torch.Generator().manual_seed(0), 1, 6, 20, 10)
    later = track.clone()
    later[:, 3:] = torch.randn(later[:, 3:].shape) * 10
    causal = EditTransformer(config).eval()
    full = EditTransformer(dataclasses.replace(config, causal=False)).eval()
    full.load_state_dict(causal.state_dict())  # the same weights: the attention mask alone differs
    assert config.causal
    _assert_same({k: v[:, :3] for k, v in causal(None, None, later).items()},
                 {k: v[:, :3] for k, v in causal(None, None, track).items()})  # fmt: skip
    assert not torch.allclose(full(None, None, later)["active"][:, :3], full(None, None, track)["active"][:, :3])


def test_every_kind_is_built_through_the_registry() -> None:
    for kind in MODEL_KINDS:
        model = build_model(ModelConfig(kind=kind, d_model=8, nhead=2, num_encoder_layers=1, dim_feedforward=8))
        assert type(model) is MODEL_CLASSES[kind] and model.config.kind == kind


def test_padding_frames_never_produce_nan_even_in_front() -> None:
    model = EditTransformer(ModelConfig(d_model=8, nhead=2, num_encoder_layers=1, dim_feedforward=8))
    b = dict(audio=torch.randn(2, 5, 5), visual=torch.randn(2, 5, 522), track=torch.zeros(2, 5, 180))
    pad = torch.tensor([[False, False, True, True, True], [False] * 5])  # left padding and an all-padding row
    out = model(**b, padding_mask=pad)
    sum(v.sum() for v in out.values()).backward()
    assert all(torch.isfinite(v).all() for v in out.values())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_padding_does_not_change_real_frames() -> None:
    torch.manual_seed(0)
    config = ModelConfig(kind="baseline", d_model=8, nhead=2, num_encoder_layers=1, dim_feedforward=8)
    model = EditTransformer(config).eval()
    track = random_frames(torch.Generator().manual_seed(0), 1, 6, 20, 10)
    full = model(None, None, track[:, :4])
    padded = model(None, None, torch.cat([track[:, :4], torch.randn(1, 2, 180)], dim=1),
                   torch.tensor([[True] * 4 + [False] * 2]))  # fmt: skip
    _assert_same({k: v[:, :4] for k, v in padded.items()}, full)


@given(data=st.data())
def test_decode_frames_layout(data: st.DataObject) -> None:
    B, T, N, K = (data.draw(st.integers(1, 3)) for _ in range(4))
    K += 1
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    out = {"active": torch.randn(B, T, N, generator=gen), "asset": torch.randn(B, T, N, K, generator=gen),
           "scale": torch.randn(B, T, N, generator=gen), "position": torch.randn(B, T, N, 2, generator=gen),
           "crop": torch.randn(B, T, N, 4, generator=gen)}  # fmt: skip
    frames = decode_frames(out, active_threshold=0.5)
    assert frames.shape == (B, T, N * 9)
    for b in range(B):
        for t in range(T):
            for n in range(N):
                row = frames[b, t, n * 9 : (n + 1) * 9]
                if torch.sigmoid(out["active"][b, t, n]) > 0.5:
                    expected = [1.0, float(out["asset"][b, t, n].argmax()), float(out["scale"][b, t, n]),
                                *out["position"][b, t, n].tolist(), *out["crop"][b, t, n].tolist()]  # fmt: skip
                    torch.testing.assert_close(row, torch.tensor(expected))
                else:
                    assert (row == 0).all()


@given(data=st.data())
def test_decode_frames_with_a_which_head_changes_exactly_the_tracks_it_names_where_the_cut_fires(data) -> None:
    """Where the cut head fires, the named tracks change (off or another asset if on, on if off), the others
    keep their layout; where it does not fire, nothing changes; a fire naming no track is no cut."""
    B, T, N, K = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)), 4
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    out = {"active": torch.randn(B, T, N, generator=gen) * 3, "asset": torch.randn(B, T, N, K, generator=gen),
           "scale": torch.randn(B, T, N, generator=gen), "position": torch.randn(B, T, N, 2, generator=gen),
           "crop": torch.randn(B, T, N, 4, generator=gen), "which": torch.randn(B, T, N, generator=gen) * 3}  # fmt: skip
    prev = torch.zeros(B, T, N, 9)
    prev[..., 0] = (torch.rand(B, T, N, generator=gen) < 0.5).float()
    prev[..., 1] = torch.randint(0, K, (B, T, N), generator=gen).float() * prev[..., 0]
    fire = torch.rand(B, T, generator=gen) < 0.5
    frames = decode_frames(out, 0.5, prev.reshape(B, T, N * 9), fire).reshape(B, T, N, 9)
    on, was_on = frames[..., 0] > 0.5, prev[..., 0] > 0.5
    changed = (on != was_on) | (on & (frames[..., 1] != prev[..., 1]))
    named = (torch.sigmoid(out["which"]) > 0.5) & fire.unsqueeze(-1)
    assert torch.equal(changed, named)
    assert (on[named & ~was_on]).all()  # a named track that was off comes on


_SCALARS = [c.name for c in schema.VISUAL_SCALARS]


@given(config=model_configs(), read=st.lists(st.sampled_from(_SCALARS), unique=True), data=st.data())
def test_visual_scalars_it_does_not_read_have_no_influence(config: ModelConfig, read: list[str],
                                                           data: st.DataObject) -> None:
    """``model.visual_inputs``: a scalar left out changes no output, however wild its values."""
    model = EditTransformer(dataclasses.replace(config, visual_inputs=tuple(read))).eval()
    b = data.draw(batches(model.config))
    out = model.forward_batch(b)
    unread = [i for i, name in enumerate(_SCALARS[: config.visual_features]) if name not in read]
    changed = dict(b, visual=b["visual"].clone())
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    changed["visual"][..., unread] = torch.randn(changed["visual"][..., unread].shape, generator=gen) * 50
    _assert_same(model.forward_batch(changed), out)


def test_a_visual_scalar_it_reads_moves_its_output() -> None:
    """The counterpart (so the test above cannot pass with every scalar ignored): the default config reads
    scene_change, and changing it moves the cut logit; saliency_x it does not read."""
    config = ModelConfig(d_model=16, nhead=2, num_encoder_layers=1, max_len=64)
    assert "scene_change" in config.visual_inputs and "saliency_x" not in config.visual_inputs
    model = EditTransformer(config).eval()
    T = 12
    audio, visual = torch.zeros(1, T, schema.AUDIO_WIDTH), torch.zeros(1, T, schema.VISUAL_WIDTH)
    track = torch.zeros(1, T, schema.TRACK_WIDTH)
    out = model(audio, visual, track)
    bumped = visual.clone()
    bumped[0, 5, _SCALARS.index("scene_change")] = 5.0
    assert not torch.allclose(model(audio, bumped, track)["cut"][0, 5], out["cut"][0, 5])
    bumped = visual.clone()
    bumped[0, 5, _SCALARS.index("saliency_x")] = 5.0
    _assert_same(model(audio, bumped, track), out)


def test_model_config_from_params_and_json() -> None:
    params = params_from_dict({"fusion_type": "attention", "use_visual": False,
                               "model": {"d_model": 16, "nhead": 2, "num_encoder_layers": 1}})  # fmt: skip
    mm = EditTransformer(ModelConfig.from_params(params, "multimodal"))
    base = EditTransformer(ModelConfig.from_params(params, "baseline"))
    assert mm.config.kind == "multimodal" and base.config.kind == "baseline"
    assert mm.config.fusion_type == "attention" and mm.config.use_visual is False
    assert mm.config.d_model == 16 and base.config.d_model == 16
    assert not hasattr(mm, "visual_embed") and hasattr(mm, "audio_embed")
    assert not hasattr(base, "audio_embed") and not hasattr(base, "fusion")
    for m in (mm, base):
        assert ModelConfig.from_dict(json.loads(json.dumps(m.config.to_dict()))) == m.config
    assert base.config.track_features == schema.TRACK_WIDTH
    with pytest.raises(ValueError, match="kind is 'track_only'; allowed values: baseline, multimodal"):
        ModelConfig.from_params(params, "track_only")
    with pytest.raises(ValueError, match=r"unknown model config keys \['heads'\]"):
        ModelConfig.from_dict({"heads": 3})
    # a config stored before model.visual_inputs existed read every visual scalar, and still does
    old = {k: v for k, v in mm.config.to_dict().items() if k != "visual_inputs"}
    assert ModelConfig.from_dict(old).visual_inputs == tuple(_SCALARS)
    with pytest.raises(ValueError, match="visual_inputs: unknown column"):
        ModelConfig(visual_inputs=("saliency",))


def test_model_config_defaults_are_the_params_defaults() -> None:
    """One source of defaults: a config built from default params is the default config."""
    assert ModelConfig.from_params(params_from_dict({}), "multimodal") == ModelConfig()


@given(config=model_configs(), data=st.data())
def test_strategy_batches_follow_the_dataset_contract(config: ModelConfig, data: st.DataObject) -> None:
    """The shared strategy itself: shifted track, right padding, zero features where unavailable."""
    b = data.draw(batches(config))
    B, T = b["padding_mask"].shape
    assert (b["prev_track"][:, 0] == 0).all() and torch.equal(b["prev_track"][:, 1:], b["targets"][:, :-1])
    lengths = b["padding_mask"].sum(1)
    assert (lengths >= 1).all() and torch.equal(b["padding_mask"], torch.arange(T) < lengths[:, None])
    assert (b["audio"][~b["modality_mask"][..., 0]] == 0).all()
    assert (b["visual"][~b["modality_mask"][..., 1]] == 0).all()
    assert b["visual"].shape == (B, T, config.visual_features) and b["targets"].shape == (B, T, config.track_features)


def test_sequences_longer_than_max_len_extend_the_position_code() -> None:
    torch.manual_seed(0)
    config = ModelConfig(kind="baseline", d_model=8, nhead=2, num_encoder_layers=1, dim_feedforward=8, max_len=4)
    model = EditTransformer(config).eval()
    track = random_frames(torch.Generator().manual_seed(1), 1, 7, 20, 10)
    _assert_same({k: v[:, :4] for k, v in model(None, None, track).items()}, model(None, None, track[:, :4]))


@given(config=model_configs(), data=st.data())
def test_content_cut_head_never_reads_the_layout(config: ModelConfig, data: st.DataObject) -> None:
    """cut_context="content": *when* the content announces a cut is the same whatever layout the
    model is shown (its own in a roll-out, the true one teacher-forced; with a layout veto that is
    ``cut_content``, the logit before the veto); "all" reads the layout."""
    model = EditTransformer(config).eval()
    b = data.draw(batches(model.config))
    other = random_frames(torch.Generator().manual_seed(data.draw(st.integers(0, 99))), *b["prev_track"].shape[:2],
                          config.num_tracks, config.max_asset_classes)  # fmt: skip
    out = model(b["audio"], b["visual"], b["prev_track"], b["padding_mask"], b["modality_mask"])
    out_other = model(b["audio"], b["visual"], other, b["padding_mask"], b["modality_mask"])
    if config.cut_context == "content":
        key = "cut_content" if config.layout_veto and config.multimodal else "cut"
        assert ("cut_content" in out) == (key == "cut_content")
        torch.testing.assert_close(out_other[key], out[key], atol=1e-6, rtol=1e-5)
    elif not torch.equal(other, b["prev_track"]) and b["modality_mask"][..., 2].all():
        assert not torch.allclose(out_other["cut"], out["cut"], atol=1e-6)


@given(config=model_configs(), data=st.data())
def test_layout_veto_only_lowers_the_cut_logit_from_each_frames_own_layout(
    config: ModelConfig, data: st.DataObject
) -> None:
    """The veto subtracts (a layout can cancel a cut the content announces, never ask for one)
    and reads the layout of the frame it scores only (no rhythm from the layout's history)."""
    config = dataclasses.replace(config, cut_context="content", layout_veto=True)
    model = EditTransformer(config).eval()
    b = data.draw(batches(model.config))
    with torch.no_grad():  # a veto that matters: the initial one is near 0 everywhere
        model.veto.mlp[-1].bias.fill_(1.0)
    out = model(b["audio"], b["visual"], b["prev_track"], b["padding_mask"], b["modality_mask"])
    assert (out["cut"] <= out["cut_content"]).all()
    B, T = b["padding_mask"].shape
    t0 = data.draw(st.integers(0, T - 1))
    other = b["prev_track"].clone()
    other[:, t0] = random_frames(torch.Generator().manual_seed(data.draw(st.integers(0, 99))), B, 1,
                                 config.num_tracks, config.max_asset_classes)[:, 0]  # fmt: skip
    out_other = model(b["audio"], b["visual"], other, b["padding_mask"], b["modality_mask"])
    keep = torch.arange(T) != t0
    torch.testing.assert_close(out_other["cut"][:, keep], out["cut"][:, keep], atol=1e-6, rtol=1e-5)


@given(data=st.data())
def test_with_change_is_the_step_from_the_previous_available_frame(data: st.DataObject) -> None:
    B, T, F = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4))
    x = torch.randn(B, T, F, generator=torch.Generator().manual_seed(data.draw(st.integers(0, 99))))
    avail = torch.tensor(data.draw(st.lists(st.booleans(), min_size=B * T, max_size=B * T))).reshape(B, T)
    y = with_change(x, avail)
    assert y.shape == (B, T, 2 * F) and torch.equal(y[..., :F], x)
    for b in range(B):
        assert (y[b, 0, F:] == 0).all()  # a window's first frame has no previous frame
        for t in range(1, T):
            want = x[b, t] - x[b, t - 1] if avail[b, t] and avail[b, t - 1] else torch.zeros(F)
            torch.testing.assert_close(y[b, t, F:], want)
