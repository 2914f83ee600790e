"""DDP under torchrun: 2 CPU processes (gloo) train like one process with the same global batch."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from trackfusion.learn.checkpoint import read_checkpoint
from trackfusion.learn.distributed import ShardSampler
from tests.strategies.corpus import write_corpus

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {
    "seed": 0,
    "model": {"d_model": 16, "nhead": 2, "num_encoder_layers": 1, "dim_feedforward": 32, "dropout": 0.0, "seq_len": 16},
    "train": {"epochs": 2, "batch_size": 8, "stride": 8, "lr": 0.003, "device": "cpu"},
}
LENGTHS = [60, 45, 50, 38, 30, 40, 35, 25, 33]
SPLITS = ["train"] * 6 + ["val", "test", "test"]


def test_shard_sampler_gives_every_item_once() -> None:
    shards = [list(ShardSampler(11, 3, r)) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(11))
    assert [len(ShardSampler(11, 3, r)) for r in range(3)] == [len(s) for s in shards]


def _run(tmp: Path, corpus: Path, nproc: int, epochs: int = 2, torchrun: bool = False) -> dict:
    """Run the stage in `tmp`; a plain start (the stage re-launches itself under torchrun
    when nproc > 1), or with torchrun=True started by torchrun directly."""
    params = json.loads(json.dumps(PARAMS))
    params["train"]["nproc"] = nproc
    params["train"]["epochs"] = epochs
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if torchrun else []
    cmd = [sys.executable, *launcher, str(ROOT / "stages" / "train.py"), "--kind", "multimodal",
           "--params", "params.yaml", "--corpus", str(corpus), "--live-dir", "plots/multimodal",
           "--metrics", "metrics/multimodal.json", "--model", "models/multimodal.pt",
           "--checkpoints", "checkpoints/multimodal"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE", "RANK")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    written = json.loads((tmp / "metrics" / "multimodal.json").read_text())
    return {**written["test"], **written["run"]}


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A 2-epoch run under torchrun with 2 processes: (corpus, run folder, its figures)."""
    tmp_path = tmp_path_factory.mktemp("ddp")
    corpus = write_corpus(tmp_path / "normalized", LENGTHS, SPLITS, seed=4)
    (tmp_path / "two").mkdir()
    return corpus, tmp_path / "two", _run(tmp_path / "two", corpus, nproc=2)


@pytest.mark.slow
def test_torchrun_two_cpu_processes_match_one_process(tmp_path: Path, ddp_run: tuple[Path, Path, dict]) -> None:
    corpus, out, ddp = ddp_run
    (tmp_path / "one").mkdir()
    single = _run(tmp_path / "one", corpus, nproc=1)

    assert ddp["world_size"] == 2 and single["world_size"] == 1
    assert ddp["epochs"] == single["epochs"] == 2
    # epoch sums are all-reduced: both runs count every train and test frame exactly once
    assert ddp["frames_seen"] >= single["frames_seen"]  # DistributedSampler may repeat up to one window
    assert ddp["frames_seen"] <= single["frames_seen"] + 16 * 2
    assert ddp["test_frames"] == single["test_frames"] == 25 + 33
    # same global batch and seed: a similar loss (data order differs, so not bit-equal)
    assert abs(ddp["loss"] - single["loss"]) <= 0.05 * single["loss"], (ddp["loss"], single["loss"])

    # exactly one set of outputs: rank 1 wrote nothing, and no epoch was logged twice
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert [f for f in files if f.startswith("metrics/")] == ["metrics/multimodal.json"]
    assert [f for f in files if f.startswith("models/")] == ["models/multimodal.pt"]
    rows = (out / "plots" / "multimodal" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert len(rows) == 1 + 2
    assert not (out / "dvc.yaml").exists()
    # the resume checkpoint of the DDP run holds both ranks' RNG states
    state = read_checkpoint(out / "checkpoints" / "multimodal" / "last.pt")  # the one checkpoint format
    assert len(state["extra"]["rng"]) == 2 and state["epoch"] == 2


@pytest.mark.slow
def test_torchrun_resume_equals_uninterrupted(tmp_path: Path, ddp_run: tuple[Path, Path, dict]) -> None:
    corpus, full, _ = ddp_run
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    _run(resumed, corpus, nproc=2, epochs=1, torchrun=True)
    # an interruption after epoch 1: the run did not finish, so its checkpoint is resumed
    (resumed / "checkpoints" / "multimodal" / "complete").unlink()
    for out in ("models", "plots"):  # `dvc repro` deletes a stage's outputs before it runs
        shutil.rmtree(resumed / out)
    result = _run(resumed, corpus, nproc=2, epochs=2, torchrun=True)
    assert result["epochs"] == 2
    a = read_checkpoint(full / "checkpoints" / "multimodal" / "last.pt")["model_state"]
    b = read_checkpoint(resumed / "checkpoints" / "multimodal" / "last.pt")["model_state"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = (resumed / "plots" / "multimodal" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert [r.split("\t")[0] for r in rows] == ["step", "0", "1"]  # all epochs' curves, from the history
    full_rows = (full / "plots" / "multimodal" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert rows == full_rows
