"""The Trainer: one loop for train and eval, NaN skipping, resume, DVCLive, the stage."""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from trackfusion import cuts
from trackfusion.results import round_figures
from trackfusion.data.corpus import Corpus
from trackfusion.learn.checkpoint import load_checkpoint
from trackfusion.learn.dataset import create_dataloaders
from trackfusion.learn.loss import MultiTrackLoss
from trackfusion.learn.metrics import EditMetrics, VideoLayoutCuts
from trackfusion.learn.model import EditTransformer, ModelConfig
from trackfusion.params import Params, params_from_dict
from trackfusion.learn.recipe import TrainingError, train_model
from trackfusion.learn.runtime import build_optimizer, build_scheduler, seed_everything
from trackfusion.learn.task import EditTask
from trackfusion.learn.trainer import RunCheckpoints, Trainer
from tests.strategies.corpus import write_corpus

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "seed": 0,
    "model": {"d_model": 16, "nhead": 2, "num_encoder_layers": 1, "dim_feedforward": 32, "dropout": 0.1, "seq_len": 16},
    "train": {"epochs": 2, "batch_size": 4, "stride": 8, "lr": 0.003, "device": "cpu"},
}
LENGTHS = [60, 45, 50, 38, 30, 40, 35, 25]
SPLITS = ["train"] * 5 + ["val", "test", "test"]


def tiny_params(**overrides: object) -> Params:
    raw = json.loads(json.dumps(TINY))
    for key, value in overrides.items():
        section, _, name = key.rpartition(".")
        (raw.setdefault(section, {}) if section else raw)[name] = value
    return params_from_dict(raw)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "normalized", LENGTHS, SPLITS, seed=1)


def make_trainer(corpus: Path, ckpt: Path, params: Params, multimodal: bool = False, **kwargs: object) -> Trainer:
    seed_everything(params.seed)
    loaders = create_dataloaders(corpus, params, multimodal=multimodal)
    model = EditTransformer(ModelConfig.from_params(params, "multimodal" if multimodal else "baseline"))
    checkpoints = RunCheckpoints(ckpt, **kwargs)
    optimizer = build_optimizer(model, params.train, torch.device("cpu"))
    task = EditTask(MultiTrackLoss(params.loss))
    return Trainer(model, task, optimizer, loaders["train"], loaders["val"], params.train, checkpoints,
                   scheduler=build_scheduler(optimizer, params.train), device="cpu", seed=params.seed,
                   progress=False)  # fmt: skip


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.raw_model.state_dict().items()}


def test_one_epoch_lowers_the_loss(corpus: Path, tmp_path: Path) -> None:
    trainer = make_trainer(corpus, tmp_path, tiny_params(**{"train.lr": 0.01}))
    before = trainer.run_epoch(trainer.train_loader, train=False)
    result = trainer.run_epoch(trainer.train_loader, train=True)
    after = trainer.run_epoch(trainer.train_loader, train=False)
    assert after["loss"] < 0.9 * before["loss"], (before["loss"], after["loss"])
    assert result["frames"] == trainer.train_loader.dataset.frames and result["nan_batches"] == 0
    for name in ("loss", "active", "asset", "scale", "position", "crop", "active_f1", "cut_f1", "scale_mae"):
        assert math.isfinite(after[name]), name


def test_eval_does_not_change_weights_and_is_the_same_loop(corpus: Path, tmp_path: Path) -> None:
    trainer = make_trainer(corpus, tmp_path, tiny_params())
    w0 = weights(trainer)
    a = trainer.run_epoch(trainer.val_loader, train=False)
    b = trainer.evaluate(trainer.val_loader)
    assert a == b  # eval mode: no dropout, deterministic
    assert all(torch.equal(w0[k], v) for k, v in weights(trainer).items())


def _batches(trainer: Trainer) -> list[dict[str, torch.Tensor]]:
    return [b for b, _ in zip(trainer.train_loader, range(3))]


def test_nan_loss_batch_is_skipped_counted_and_leaves_weights_intact(corpus: Path, tmp_path: Path, caplog) -> None:
    trainer = make_trainer(corpus, tmp_path, tiny_params())
    good = _batches(trainer)
    poisoned = {k: v.clone() for k, v in good[1].items()}
    active = poisoned["targets"][..., 0::9] > 0.5  # (B, T, 20) active track-frames
    scale = poisoned["targets"][..., 2::9]
    scale[active] = float("nan")  # a NaN target where it counts: the loss becomes NaN
    poisoned["targets"][..., 2::9] = scale

    w0 = weights(trainer)
    result = trainer.run_epoch([poisoned], train=True)
    assert result["nan_batches"] == 1 and result["batches"] == 0
    assert all(torch.equal(w0[k], v) for k, v in weights(trainer).items())  # untouched
    assert not trainer.optimizer.state  # no step was taken

    result = trainer.run_epoch([good[0], poisoned, good[2]], train=True)
    assert result["nan_batches"] == 1 and result["batches"] == 2
    assert math.isfinite(result["loss"])
    assert all(torch.isfinite(v).all() for v in weights(trainer).values())
    assert any("non-finite" in r.message for r in caplog.records)


def test_non_finite_gradient_is_skipped(corpus: Path, tmp_path: Path) -> None:
    trainer = make_trainer(corpus, tmp_path, tiny_params())
    batch = _batches(trainer)[0]
    param = next(trainer.raw_model.parameters())
    handle = param.register_hook(lambda g: g * float("inf"))  # finite loss, infinite gradient
    w0 = weights(trainer)
    result = trainer.run_epoch([batch], train=True)
    handle.remove()
    assert result["nan_batches"] == 1
    assert all(torch.equal(w0[k], v) for k, v in weights(trainer).items())


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_training_is_deterministic_and_resume_equals_uninterrupted(corpus: Path, tmp_path: Path, schedule: str) -> None:
    params = tiny_params(**{"train.epochs": 3, "train.lr_schedule": schedule})
    full = make_trainer(corpus, tmp_path / "full", params)
    full.fit()
    again = make_trainer(corpus, tmp_path / "again", params)
    again.fit()
    assert all(torch.equal(v, weights(again)[k]) for k, v in weights(full).items())  # same seed, same run

    first = make_trainer(corpus, tmp_path / "resumed", params)
    first.fit(epochs=1)  # "interrupted" after one epoch
    assert (tmp_path / "resumed" / "last.pt").exists()
    second = make_trainer(corpus, tmp_path / "resumed", params, resume=True)
    second.fit()
    assert second.epoch == 3 and len(second.history) == 3
    w_full, w_res = weights(full), weights(second)
    assert all(torch.equal(w_full[k], w_res[k]) for k in w_full)
    assert second.best_val == full.best_val and second.frames_seen == full.frames_seen
    assert second.history[-1]["val"] == full.history[-1]["val"]
    lr = params.train.lr * (params.train.lr_final_fraction if schedule == "cosine" else 1.0)  # cosine: decayed
    assert second.optimizer.param_groups[0]["lr"] == pytest.approx(lr) == full.optimizer.param_groups[0]["lr"]


def test_resume_ignores_a_checkpoint_of_other_params(corpus: Path, tmp_path: Path) -> None:
    params = tiny_params(**{"train.epochs": 1})
    make_trainer(corpus, tmp_path, params, fingerprint="a").fit()
    other = make_trainer(corpus, tmp_path, params, fingerprint="b", resume=True)
    assert other.restore() is False and other.epoch == 0


def test_resume_fingerprint_covers_the_code_and_every_corpus_byte(corpus: Path, tmp_path: Path) -> None:
    """Issue 12: after an edit to loss.py, or a corpus whose values changed under the same
    index, training resumed the old run and mixed two definitions."""
    import shutil

    from trackfusion.learn.fingerprint import run_fingerprint as _fingerprint

    params = tiny_params()
    data, code = tmp_path / "corpus", tmp_path / "code"
    shutil.copytree(corpus, data)
    code.mkdir()
    (code / "loss.py").write_text("WEIGHT = 1\n")
    first = _fingerprint(params, "baseline", data, code)
    assert _fingerprint(params, "baseline", data, code) == first
    assert _fingerprint(tiny_params(**{"train.epochs": 9}), "baseline", data, code) == first  # more epochs continue
    (code / "loss.py").write_text("WEIGHT = 2\n")
    assert _fingerprint(params, "baseline", data, code) != first
    (code / "loss.py").write_text("WEIGHT = 1\n")
    (code / "data").mkdir()  # issue 13: the package has subpackages; the first version hashed one folder
    (code / "data" / "normalization.py").write_text("STD_FLOOR = 1e-6\n")
    with_data = _fingerprint(params, "baseline", data, code)
    assert with_data != first
    (code / "data" / "normalization.py").write_text("STD_FLOOR = 1e-3\n")
    assert _fingerprint(params, "baseline", data, code) != with_data
    (code / "data" / "normalization.py").unlink()
    raw = bytearray((data / "track.bin").read_bytes())
    raw[-1] ^= 0xFF  # one value changed, the index untouched
    (data / "track.bin").write_bytes(bytes(raw))
    assert _fingerprint(params, "baseline", data, code) != first


def test_a_corrupt_resume_checkpoint_starts_afresh_instead_of_blocking(corpus: Path, tmp_path: Path, caplog) -> None:
    """Issue 12: a truncated last.pt raised on every later run until removed by hand."""
    params = tiny_params(**{"train.epochs": 1})
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "last.pt").write_bytes(b"PK\x03\x04 truncated by a crash")
    trainer = make_trainer(corpus, tmp_path, params, fingerprint="a", resume=True)
    with caplog.at_level(logging.WARNING, logger="trackfusion.learn.trainer"):
        assert trainer.restore() is False
    assert "unreadable" in caplog.text and trainer.epoch == 0
    trainer.fit()
    assert trainer.epoch == 1 and make_trainer(corpus, tmp_path, params, fingerprint="a").restore() is True


def test_no_finite_epoch_fails_and_never_ships_an_earlier_model(corpus: Path, tmp_path: Path, monkeypatch) -> None:
    """Issue 12: with every loss non-finite the stage shipped the best.pt an earlier run left, exit 0."""
    params = tiny_params(**{"train.epochs": 1})
    out = {name: tmp_path / name for name in ("m.json", "m.pt", "ckpt", "live")}
    train_model(params, corpus, "baseline", out["live"], out["m.json"], out["m.pt"], out["ckpt"], progress=False)
    out["m.pt"].unlink()
    out["m.json"].unlink()

    class NanLoss(MultiTrackLoss):
        def forward(self, *args, **kwargs):
            losses = super().forward(*args, **kwargs)
            return {k: v * float("nan") for k, v in losses.items()}

    monkeypatch.setattr("trackfusion.learn.recipe.MultiTrackLoss", NanLoss)
    with pytest.raises(TrainingError, match="no epoch of the baseline model gave a finite loss"):
        train_model(params, corpus, "baseline", out["live"], out["m.json"], out["m.pt"], out["ckpt"], progress=False)
    assert not out["m.pt"].exists() and not out["m.json"].exists()


def test_property_18_track_only_training_without_features(tmp_path: Path) -> None:
    """The corpus says it has no features, as align records it (issue 13: without the flag,
    refusing such a corpus for the baseline too went unnoticed)."""
    corpus = write_corpus(tmp_path / "normalized", LENGTHS, SPLITS, seed=2, features=False)
    assert Corpus(corpus).meta["has_features"] is False
    out = tmp_path / "run"
    result = train_model(tiny_params(), corpus, "baseline", out / "plots" / "baseline", out / "metrics.json",
                         out / "models" / "baseline.pt", out / "ckpt", progress=False)  # fmt: skip
    written = json.loads((out / "metrics.json").read_text())
    figures = {k: result[k] for k in ("test", "run")}
    assert written == json.loads(json.dumps(round_figures(figures)))  # figures only, at the digits that reproduce
    test, run = written["test"], written["run"]
    for key in ("loss", "active", "asset", "scale", "position", "crop", "active_f1", "asset_accuracy", "scale_mae",
                "position_mae", "crop_mae", "cut_f1"):  # fmt: skip
        assert math.isfinite(test[key]), key
    for key in ("epochs", "frames_seen", "nan_batches_skipped", "params_sha256"):
        assert key in run, key
    for key in ("wall_time_s", "frames_per_s", "peak_memory_mb", "device"):  # run facts: never in the metrics file
        assert key in result["facts"] and key not in run, key
    assert run["epochs"] == 2 and result["facts"]["device"] == "cpu" and run["nan_batches_skipped"] == 0
    assert result["facts"]["frames_per_s"] > 0 and result["facts"]["peak_memory_mb"] > 0
    assert run["test_frames"] == 35 + 25  # every test frame once
    # the resolved params travel in the checkpoint; the metrics file carries their digest
    _, payload = load_checkpoint(out / "models" / "baseline.pt")
    stored = json.loads(payload["extra"]["params"])
    assert stored["model"]["d_model"] == 16
    assert run["params_sha256"] == hashlib.sha256(json.dumps(stored, sort_keys=True).encode()).hexdigest()[:16]
    # MAEs are reported in original units: the corpus' normalization.json says std 2.0
    model, _ = load_checkpoint(out / "models" / "baseline.pt")
    loaders = create_dataloaders(corpus, tiny_params(), splits=("test",))
    acc, video_cuts = EditMetrics(), VideoLayoutCuts()
    with torch.no_grad():
        for b in loaders["test"]:
            out = model.eval().forward_batch(b)
            acc.update(out, b["targets"], b["padding_mask"] & b["scored"])  # each frame once
            video_cuts.add(out, b)
    assert test["scale_mae"] == pytest.approx(2.0 * acc.compute()["scale_mae"], rel=1e-5)
    # test cuts are decoded with the firing rule chosen on validation, stored in the model file
    decoding = payload["extra"]["cut_decoding"]
    assert decoding == run["cut_decoding"]
    assert test["cut_f1"] == pytest.approx(video_cuts.score(cuts.CutDecoding.from_dict(decoding))["cut_f1"])


@pytest.mark.parametrize("decoding_on", ["train+val", "val"])
def test_cut_decoding_is_chosen_on_the_videos_params_name(corpus: Path, tmp_path: Path, decoding_on: str) -> None:
    """The firing threshold and spacing stored with the model are the best pooled cut F1 of the
    saved weights over whole videos of train+val (eval windows, as test is scored) or of val alone."""
    params = tiny_params(**{"train.decoding_on": decoding_on, "train.epochs": 1})
    result = train_model(params, corpus, "baseline", tmp_path / "live", tmp_path / "m.json", tmp_path / "m.pt",
                         tmp_path / "ckpt", progress=False)  # fmt: skip
    model, payload = load_checkpoint(tmp_path / "m.pt")
    splits = ("train", "val") if decoding_on == "train+val" else ("val",)
    probs, true = [], []
    for loader in create_dataloaders(corpus, params, splits, evaluation=True).values():
        video_cuts = VideoLayoutCuts()
        with torch.no_grad():
            for b in loader:
                video_cuts.add(model.eval().forward_batch(b), b)
        probs += [d["prob"] for d in video_cuts.videos().values()]
        true += [cuts.cut_events(d["true"]) for d in video_cuts.videos().values()]
    assert sum(len(p) for p in probs) == sum(LENGTHS[i] for i, s in enumerate(SPLITS) if s in splits)  # each frame once
    best = cuts.tune_firing(probs, true)
    assert payload["extra"]["cut_decoding"] == {"threshold": best["threshold"], "spacing": best["spacing"]}
    assert result["run"]["cut_decoding"] == payload["extra"]["cut_decoding"]


def test_multimodal_training_writes_dvclive_curves_and_a_loadable_checkpoint(corpus: Path, tmp_path: Path) -> None:
    live_dir = tmp_path / "plots" / "multimodal"
    params = tiny_params(content_control="shuffle")
    result = train_model(params, corpus, "multimodal", live_dir, tmp_path / "m.json", tmp_path / "m.pt",
                         tmp_path / "ckpt", progress=False)  # fmt: skip
    for split in ("train", "val"):
        for name in ("loss", "active", "crop", "cut", "active_f1", "scale_mae") + (("cut_f1",) if split == "val" else ()):
            rows = (live_dir / "plots" / "metrics" / split / f"{name}.tsv").read_text().strip().splitlines()
            assert rows[0].split("\t") == ["step", name] and len(rows) == 1 + 2, (split, name)
    assert not (live_dir / "dvc.yaml").exists() and not (tmp_path / "dvc.yaml").exists()
    model, payload = load_checkpoint(tmp_path / "m.pt")
    assert payload["kind"] == "multimodal" and payload["extra"]["kind"] == "multimodal"
    assert payload["config"] == model.config and model.config.d_model == 16 and model.config.fusion_type == "gated"
    assert result["run"]["best_epoch"] >= 1 and result["run"]["kind"] == "multimodal"
    assert (tmp_path / "ckpt" / "complete").exists()


def test_stage_script_runs_on_a_tiny_corpus(corpus: Path, tmp_path: Path) -> None:
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(json.loads(json.dumps(TINY)) | {"train": TINY["train"] | {"epochs": 1}}))
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "stages" / "train.py"), "--kind", "baseline", "--params", str(params_file),
           "--corpus", str(corpus), "--live-dir", str(out / "plots"), "--metrics", str(out / "metrics.json"),
           "--model", str(out / "model.pt"), "--checkpoints", str(out / "ckpt")]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE", "RANK")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"]["epochs"] == 1 and metrics["run"]["kind"] == "baseline"
    assert (out / "plots" / "plots" / "metrics" / "val" / "loss.tsv").exists()
    assert (out / "model.pt").exists() and not (tmp_path / "dvc.yaml").exists()


def test_edit_metrics_are_the_accumulator_of_the_loop(corpus: Path, tmp_path: Path) -> None:
    """The loop's figures equal EditMetrics fed the same batches by hand (a slow reference)."""
    trainer = make_trainer(corpus, tmp_path, tiny_params())
    got = trainer.run_epoch(trainer.val_loader, train=False)
    acc, video_cuts = EditMetrics(), VideoLayoutCuts()
    trainer.raw_model.eval()
    with torch.no_grad():
        for b in trainer.val_loader:
            out = trainer.raw_model.forward_batch(b)
            acc.update(out, b["targets"], b["padding_mask"] & b["scored"])  # each frame once
            video_cuts.add(out, b)
    want = acc.compute()
    assert got["active_f1"] == want["active_f1"]
    # validation chooses its own cut decoding, over whole videos
    best = video_cuts.tune()
    assert got["cut_f1"] == video_cuts.score(best)["cut_f1"]
    assert (got["cut_threshold"], got["cut_spacing"]) == (best.threshold, best.spacing)


def test_multimodal_refuses_a_corpus_without_any_feature_file(tmp_path: Path) -> None:
    """SPEC 8: no feature files anywhere is an error for a multimodal run; the baseline still runs."""
    from trackfusion.learn.recipe import NoFeaturesError

    corpus = write_corpus(tmp_path / "normalized", LENGTHS, SPLITS, seed=2, features=False)
    assert Corpus(corpus).meta["has_features"] is False  # what align_corpus records for such a corpus
    out = tmp_path / "run"
    with pytest.raises(NoFeaturesError, match="no video has a usable audio or visual feature file"):
        train_model(tiny_params(), corpus, "multimodal", out / "live", out / "m.json", out / "m.pt", out / "ck",
                    progress=False)  # fmt: skip
    assert not (out / "m.json").exists()
    train_model(tiny_params(), corpus, "baseline", out / "live_b", out / "b.json", out / "b.pt", out / "ck_b",
                progress=False)  # fmt: skip
    assert (out / "b.json").exists()


def test_property_17_both_kinds_train_with_one_loss(corpus: Path, tmp_path: Path) -> None:
    """The training stage gives both kinds the same MultiTrackLoss, with the params' weights."""
    from trackfusion.learn.recipe import setup_run

    params = tiny_params(**{"loss.crop": 0.75})
    losses = [setup_run(params, corpus, kind, tmp_path / kind, torch.device("cpu"), False, False, 0.0).trainer.task.loss
              for kind in ("baseline", "multimodal")]  # fmt: skip
    assert all(type(loss) is MultiTrackLoss for loss in losses)
    assert losses[0].weights == losses[1].weights and losses[0].weights["crop"] == 0.75
    assert losses[0].cut_pos_weight == losses[1].cut_pos_weight == params.loss.cut_pos_weight
