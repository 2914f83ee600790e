"""Training benchmark: the Trainer against a bare PyTorch loop, frames/s, data loading.

    .venv/bin/python bench/bench_training.py [--quick] [--threads N]

Writes a random memory-mapped corpus to a temporary folder and measures, in one run:
1. Trainer step time vs a bare loop (forward, the task's MultiTrackLoss, backward, clip,
   AdamW step) over the same model, the same pre-built batches
   and the same optimizer; the ratio includes the Trainer's NaN checks, loss sums, edit
   metrics and progress bar (target <= 1.1). Also the Trainer fed by the real DataLoader.
2. Training frames/s of the default config and a larger one (d_model 256, 6 layers).
3. Data loading windows/s and frames/s from the memory-mapped corpus (DataLoader,
   num_workers=0) against the frames/s the default training consumes (target >= 5x).

`run(quick) -> list[dict]` returns the rows it prints (name, value, unit, reference,
ratio, target).
"""
from __future__ import annotations

import argparse
import copy
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.strategies: the random corpus writer shared with the tests

from tests.strategies.corpus import write_corpus  # noqa: E402
from trackfusion.learn.dataset import create_dataloaders  # noqa: E402
from trackfusion.learn.loss import MultiTrackLoss  # noqa: E402
from trackfusion.learn.model import EditTransformer, ModelConfig  # noqa: E402
from trackfusion.params import Params, params_from_dict  # noqa: E402
from trackfusion.learn.runtime import build_optimizer, seed_everything  # noqa: E402
from trackfusion.learn.task import EditTask  # noqa: E402
from trackfusion.learn.trainer import RunCheckpoints, Trainer  # noqa: E402
from timing import best_of  # bench/ is on sys.path when a benchmark runs

LARGE = {"d_model": 256, "nhead": 8, "num_encoder_layers": 6, "dim_feedforward": 1024}


def _params(model: dict[str, Any] | None = None) -> Params:
    return params_from_dict({"model": model or {}, "train": {"device": "cpu"}})


def bare_loop(model: torch.nn.Module, task: EditTask, optimizer: torch.optim.Optimizer,
              batches: list[dict[str, torch.Tensor]], grad_clip: float) -> None:  # fmt: skip
    """The reference: what any PyTorch training loop does per step, nothing else.

    The loss is the task's, fed as the Trainer feeds it (the true previous frame and
    `has_prev`): given the targets alone it skips the cut terms and the change weights,
    and the ratio counted that smaller objective, not the Trainer, as overhead (1.17x)."""
    model.train()
    for batch in batches:
        outputs = model.forward_batch(batch)
        loss = task.losses(outputs, batch, batch["padding_mask"])["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()




def _row(name: str, value: float, unit: str, reference: float | None = None, target: str = "") -> dict[str, Any]:
    ratio = value / reference if reference else None
    return {"name": name, "value": value, "unit": unit, "reference": reference, "ratio": ratio, "target": target}


def _trainer(params: Params, corpus: Path, ckpt: Path, multimodal: bool) -> tuple[Trainer, dict[str, Any]]:
    seed_everything(0)
    loaders = create_dataloaders(corpus, params, splits=("train",), multimodal=multimodal)
    model = EditTransformer(ModelConfig.from_params(params, "multimodal" if multimodal else "baseline"))
    optimizer = build_optimizer(model, params.train, torch.device("cpu"))
    trainer = Trainer(model, EditTask(MultiTrackLoss(params.loss)), optimizer, loaders["train"], None, params.train,
                      RunCheckpoints(ckpt), device="cpu", progress=True)  # fmt: skip
    return trainer, loaders


def run(quick: bool = False) -> list[dict[str, Any]]:
    logging.disable(logging.WARNING)
    rows: list[dict[str, Any]] = []
    n_batches = 2 if quick else 12
    repeat = 2 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        videos = 6 if quick else 16
        corpus = write_corpus(tmp_path / "corpus", [900] * videos, ["train"] * videos, seed=0)

        # 1. Trainer vs bare loop, default config, multimodal (the heavier of the two inputs)
        params = _params()
        trainer, loaders = _trainer(params, corpus, tmp_path / "ckpt", multimodal=True)
        batches = [b for b, _ in zip(loaders["train"], range(n_batches))]
        frames = sum(int(b["padding_mask"].sum()) for b in batches)
        bare_model = copy.deepcopy(trainer.raw_model)
        bare_opt = build_optimizer(bare_model, params.train, torch.device("cpu"))
        task = EditTask(MultiTrackLoss(params.loss))
        n_windows = min(len(loaders["train"].dataset), len(batches) * params.train.batch_size)
        subset = torch.utils.data.Subset(loaders["train"].dataset, range(n_windows))
        loader = torch.utils.data.DataLoader(subset, batch_size=params.train.batch_size,
                                             collate_fn=loaders["train"].collate_fn)  # fmt: skip
        variants = {
            "bare": lambda: bare_loop(bare_model, task, bare_opt, batches, params.train.grad_clip),
            "trainer": lambda: trainer.run_epoch(batches, train=True),
            "loader": lambda: trainer.run_epoch(loader, train=True),  # the Trainer fed from the mmap corpus
        }
        # warm-up (allocator, AdamW state), then alternate so all see the same machine load
        bare_loop(bare_model, task, bare_opt, batches[:2], params.train.grad_clip)
        trainer.run_epoch(batches[:2], train=True)
        best = dict.fromkeys(variants, float("inf"))
        for _ in range(repeat):
            for name, fn in variants.items():
                best[name] = min(best[name], best_of(fn, 1))
        t_bare, t_trainer = best["bare"], best["trainer"]
        step_bare = t_bare / len(batches) * 1000
        step_trainer = t_trainer / len(batches) * 1000
        rows.append(_row("bare loop step time", step_bare, "ms/step"))
        rows.append(_row("Trainer step time (same batches)", step_trainer, "ms/step", step_bare, "<= 1.1x bare"))
        rows.append(_row("Trainer step time (DataLoader, mmap corpus)", best["loader"] / len(loader) * 1000,
                         "ms/step", step_bare, "data loading included"))  # fmt: skip
        rows.append(_row("bare loop frames/s (default config)", frames / t_bare, "frames/s"))
        consumed = frames / t_trainer
        rows.append(_row("Trainer frames/s, default multimodal", consumed, "frames/s"))

        # 2. frames/s: baseline default and the larger config
        base, base_loaders = _trainer(params, corpus, tmp_path / "ckpt_b", multimodal=False)
        b_batches = [b for b, _ in zip(base_loaders["train"], range(n_batches))]
        base.run_epoch(b_batches[:1], train=True)
        rows.append(_row("Trainer frames/s, default baseline",
                         frames / best_of(lambda: base.run_epoch(b_batches, train=True), repeat), "frames/s"))  # fmt: skip
        large_params = _params(LARGE)
        large, _ = _trainer(large_params, corpus, tmp_path / "ckpt_l", multimodal=True)
        few = [{k: v[:8] for k, v in b.items()} for b in batches[: 2 if quick else 4]]  # 8 windows a step: slow model
        large.run_epoch(few[:1], train=True)
        few_frames = sum(int(b["padding_mask"].sum()) for b in few)
        rows.append(_row("Trainer frames/s, d_model 256 x 6 layers multimodal",
                         few_frames / best_of(lambda: large.run_epoch(few, train=True), 1), "frames/s"))  # fmt: skip

        # 3. data loading from the memory-mapped corpus against what training consumes
        full = create_dataloaders(corpus, params, splits=("train",), multimodal=True)["train"]

        def load_all() -> None:
            for _ in full:
                pass

        t_load = best_of(load_all, repeat)
        windows = len(full.dataset)
        load_frames = full.dataset.frames
        rows.append(_row("data loading windows/s (mmap, num_workers=0)", windows / t_load, "windows/s"))
        rows.append(_row("data loading frames/s vs training consumption", load_frames / t_load, "frames/s", consumed,
                         ">= 5x consumed"))  # fmt: skip
    logging.disable(logging.NOTSET)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer videos and batches (about a minute less)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # on shared cores, 1 avoids OpenMP busy-waiting
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    rows = run(args.quick)
    print(f"{'measure':52s} {'value':>12s} {'unit':>10s} {'ratio':>8s}  target")
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else ""
        print(f"{r['name']:52s} {r['value']:12.1f} {r['unit']:>10s} {ratio:>8s}  {r['target']}")


if __name__ == "__main__":
    main()
