"""Checkpoints: properties 20 and 21, round trips, resuming and the error cases."""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies.model import batches, make_batch, model_configs
from trackfusion.learn import MODEL_KINDS
from trackfusion.learn.checkpoint import MODEL_VERSION, CheckpointError, load_checkpoint, save_checkpoint
from trackfusion.learn.model import EditTransformer, ModelConfig

torch.set_num_threads(1)


def _assert_same(a: dict, b: dict) -> None:
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=0, rtol=0, msg=lambda m: f"{k}: {m}")


def _tiny(multimodal: bool = True, **kw) -> EditTransformer:
    torch.manual_seed(0)
    kind = "multimodal" if multimodal else "baseline"
    return EditTransformer(ModelConfig(kind=kind, d_model=8, nhead=2, num_encoder_layers=1, dim_feedforward=8, **kw))


@given(config=model_configs(), data=st.data())
def test_property_21_checkpoint_type_detected(config: ModelConfig, data: st.DataObject) -> None:
    """Every kind of config is drawn: baseline, multimodal, one or both modalities off (issue 13:
    with only two kinds drawn, a detection that ignored the modality flags passed)."""
    config = dataclasses.replace(config, kind=data.draw(st.sampled_from(MODEL_KINDS)),
                                 use_audio=data.draw(st.booleans()), use_visual=data.draw(st.booleans()))  # fmt: skip
    model = EditTransformer(config).eval()
    b = data.draw(batches(config))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "my model (epoch 1).pt"
        save_checkpoint(path, model, epoch=3, extra={"val_loss": 1.5})
        loaded, payload = load_checkpoint(path)
        assert [p.name for p in Path(tmp).iterdir()] == [path.name]  # no temporary file left behind
    assert payload["kind"] == config.kind and loaded.config == config and payload["config"] == config
    assert payload["model_version"] == MODEL_VERSION and payload["epoch"] == 3 and payload["extra"] == {"val_loss": 1.5}
    for part in ("audio_embed", "visual_embed", "fusion", "cut_encoder"):  # the same network, module for module
        assert hasattr(loaded, part) == hasattr(model, part), part
    loaded.eval()
    _assert_same(loaded.forward_batch(b), model.forward_batch(b))  # round trip: identical outputs


@given(config=model_configs(), data=st.data())
def test_property_20_infers_multimodal_and_track_only(config: ModelConfig, data: st.DataObject) -> None:
    model = EditTransformer(config).eval()
    b = data.draw(batches(config))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "multimodal.pt"
        save_checkpoint(path, model)
        full, _ = load_checkpoint(path)
        track_only, payload = load_checkpoint(path, without_content=True)
    full.eval(), track_only.eval()
    assert payload["kind"] == "multimodal"
    assert not hasattr(track_only, "audio_embed") and not hasattr(track_only, "visual_embed")
    # multimodal inference: the trained model as saved
    _assert_same(full.forward_batch(b), model.forward_batch(b))
    # track-only inference: needs no audio or visual at all, and equals the full model with both unavailable
    out = track_only(None, None, b["prev_track"], b["padding_mask"])
    masked = b["modality_mask"].clone()
    masked[..., :2] = False
    expected = model(b["audio"], b["visual"], b["prev_track"], b["padding_mask"], masked)
    for k in out:
        torch.testing.assert_close(out[k], expected[k], atol=1e-6, rtol=1e-5)
    # content still matters for the full model (where any is available)
    if b["modality_mask"][..., :2].any():
        full_out = full.forward_batch(b)
        assert any(not torch.allclose(full_out[k], out[k]) for k in out)


def test_resume_restores_optimizer_and_scheduler(tmp_path: Path) -> None:
    model = _tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    b = make_batch(model.config, B=2, T=6, seed=1)
    model.forward_batch(b)["active"].sum().backward()
    opt.step()
    sched.step()
    save_checkpoint(tmp_path / "ckpt.pt", model, opt, sched, epoch=1)
    model2 = _tiny()
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-2)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=1, gamma=0.5)
    loaded, payload = load_checkpoint(tmp_path / "ckpt.pt", optimizer=opt2, scheduler=sched2)
    assert payload["epoch"] == 1
    assert sched2.state_dict()["last_epoch"] == 1 and opt2.param_groups[0]["lr"] == pytest.approx(5e-3)
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]


def test_compiled_or_wrapped_model_saves_the_bare_model(tmp_path: Path) -> None:
    model = _tiny(multimodal=False)
    save_checkpoint(tmp_path / "c.pt", torch.nn.DataParallel(model))
    loaded, payload = load_checkpoint(tmp_path / "c.pt")
    assert payload["kind"] == "baseline" and set(loaded.state_dict()) == set(model.state_dict())


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="checkpoint not found: .*nothing here.pt"):
        load_checkpoint(tmp_path / "nothing here.pt")


def test_wrong_model_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.pt"
    save_checkpoint(path, _tiny())
    payload = torch.load(path, weights_only=True)
    payload["model_version"] = MODEL_VERSION + 1
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=rf"old.pt: model_version {MODEL_VERSION + 1}, this code reads"):
        load_checkpoint(path)
    payload["model_version"] = 6  # before ModelConfig.kind: its config has enable_multimodal
    payload["config"] = {k: v for k, v in payload["config"].items() if k not in ("kind", "causal")}
    payload["config"]["enable_multimodal"] = True
    torch.save(payload, path)
    old = rf"model_version 6, this code reads model_version {MODEL_VERSION}; .* train it again"
    with pytest.raises(CheckpointError, match=old):
        load_checkpoint(path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "not_a_dict", "wrong_type", "unknown_config_key"])
def test_corrupt_file_is_named(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "bad ckpt.pt"
    save_checkpoint(path, _tiny())
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "garbage":
        path.write_bytes(b"\x00not a checkpoint" * 10)
    elif damage == "not_a_dict":
        torch.save([1, 2, 3], path)
    elif damage == "wrong_type":
        payload = torch.load(path, weights_only=True)
        payload["kind"] = "baseline"  # a multimodal config
        torch.save(payload, path)
    else:
        payload = torch.load(path, weights_only=True)
        payload["config"]["heads"] = 3
        torch.save(payload, path)
    with pytest.raises(CheckpointError, match="bad ckpt.pt"):
        load_checkpoint(path)


def test_unsafe_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "unsafe.pt"
    torch.save({"model_version": MODEL_VERSION, "kind": "baseline", "config": {}, "model_state": {},
                "evil": Path("x")}, path)  # fmt: skip
    with pytest.raises(CheckpointError, match="unsafe.pt: not a trackfusion model file"):
        load_checkpoint(path)


def test_the_same_weights_give_the_same_bytes(tmp_path: Path) -> None:
    """Issue 12: the temporary file's name ended up inside the zip, so identical weights changed the md5."""
    torch.manual_seed(0)
    model = _tiny(multimodal=False)
    a = save_checkpoint(tmp_path / "a" / "model.pt", model, extra={"kind": "baseline"})
    b = save_checkpoint(tmp_path / "b" / "model.pt", model, extra={"kind": "baseline"})
    assert a.read_bytes() == b.read_bytes()


def test_outputs_get_the_modes_of_a_new_file(tmp_path: Path) -> None:
    """Issue 12: atomic outputs were 0600 files in 0700 folders (0644 / 0755 after a DVC checkout)."""
    import os

    from trackfusion.atomic import atomic_dir, write_json

    mask = os.umask(0o022)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
        with atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "x").write_text("x")
    finally:
        os.umask(mask)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o755


def test_leftovers_of_killed_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    """Issue 12: data/.aligned.*.tmp and data/.predictions.*.tmp of interrupted runs were never cleaned."""
    import os
    import subprocess
    import sys

    from trackfusion.atomic import atomic_dir

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    (tmp_path / f".aligned.{dead_pid}.abc123.tmp").mkdir()
    (tmp_path / f".aligned.{dead_pid}.abc123.tmp" / "audio.bin").write_bytes(b"half")
    (tmp_path / f".aligned.old-{dead_pid}").mkdir()
    live = tmp_path / f".aligned.{os.getppid()}.xyz.tmp"  # a running process's work in progress
    live.mkdir()
    other = tmp_path / ".aligned_notes"
    other.write_text("not ours")
    with atomic_dir(tmp_path / "aligned") as tmp:
        (tmp / "index.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["aligned", live.name, other.name])
