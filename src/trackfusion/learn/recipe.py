"""The training stage's recipe: one run of `stages/train.py`, from a corpus to a model file.

`train_model` is `setup_run` (loaders, model, task, optimizer, the Trainer; restored from
`last.pt` when resuming) -> `fit_run` (the epochs) -> `finish_run` (the best-val weights
with the decoding the task chose, scored on test, the metrics file). The recipe decides
what a run is made of; the library it assembles (`trainer`, `task`, `runtime`) knows
nothing of stages, kinds or files.

A metrics file is `{"test": {...}, "run": {...}}` (figures only, at `results.FIGURE_DIGITS`); rank 0
alone writes it. `train_model` returns it with `"facts"` (timings, memory, device) added for `runs/`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trackfusion import cuts
from trackfusion.results import write_figures
from trackfusion.data.corpus import Corpus
from trackfusion.data.normalization import param_std, read_track_std
from trackfusion.learn import distributed as dist_utils
from trackfusion.learn.checkpoint import load_checkpoint, save_checkpoint
from trackfusion.learn.dataset import create_dataloaders
from trackfusion.learn.fingerprint import run_fingerprint
from trackfusion.learn.loss import MultiTrackLoss
from trackfusion.learn import MODEL_KINDS
from trackfusion.learn.model import ModelConfig, build_model
from trackfusion.learn.runtime import build_optimizer, build_scheduler, peak_memory_mb, resolve_device, seed_everything
from trackfusion.learn.task import EditTask
from trackfusion.learn.toggle import fit_toggle_head
from trackfusion.learn.trainer import RunCheckpoints, Trainer
from trackfusion.params import Params

log = logging.getLogger(__name__)

COMPLETE_FILE = "complete"  # written when a run finishes; such a run is not resumed


class NoFeaturesError(ValueError):
    """A multimodal run on a corpus where no video has any feature file."""


class TrainingError(RuntimeError):
    """Training produced no model worth writing (no epoch with a finite loss)."""


@dataclass
class TrainingRun:
    """One run's ready-made collaborators (built by `setup_run`) and what it has shown so far."""

    kind: str
    params: Params
    corpus_dir: Path
    device: torch.device
    loaders: dict[str, Any]
    trainer: Trainer
    complete: Path  # marker written when the run finishes: such a run is never resumed
    parameters: int
    wall_start: float


def train_model(
    params: Params,
    corpus_dir: str | Path,
    kind: str,
    live_dir: str | Path,
    metrics_path: str | Path,
    model_path: str | Path,
    checkpoint_dir: str | Path,
    resume: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a baseline or multimodal model, evaluate its best-val checkpoint on test.

    Writes (rank 0 only): DVCLive files under `live_dir`, `checkpoint_dir/last.pt` (resume)
    and `best.pt` each epoch, the best-val checkpoint copied to `model_path` at the end,
    and `metrics_path` (test figures and run info). Returns what it wrote to `metrics_path`.
    An interrupted run (same params, code and corpus, `checkpoint_dir` without `complete`)
    continues from `last.pt` when `resume` is True.
    """
    from dvclive import Live  # imported here: only the stage needs it, and it is slow to import

    check_corpus_for(kind, corpus_dir)
    wall_start = time.perf_counter()
    device = dist_utils.local_device(resolve_device(params.train.device))
    dist_utils.init_process_group(device)
    try:
        run = setup_run(params, Path(corpus_dir), kind, Path(checkpoint_dir), device, resume, progress, wall_start)
        if dist_utils.is_main():
            # dvcyaml=None: DVCLive must never rewrite the hand-written dvc.yaml (SPEC 12)
            run.trainer.attach_live(Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None))
        fit_run(run)
        return finish_run(run, Path(model_path), Path(metrics_path))
    finally:
        dist_utils.destroy()


def check_corpus_for(kind: str, corpus_dir: str | Path) -> None:
    """One clear error before any work: an unknown kind, or content missing for a multimodal run."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind is {kind!r}; allowed values: {', '.join(MODEL_KINDS)}")
    if kind == "multimodal" and Corpus(corpus_dir).meta.get("has_features") is False:
        raise NoFeaturesError(
            f"{corpus_dir}: no video has a usable audio or visual feature file, so there is no content for the "
            "multimodal model (SPEC section 8); check data.raw_dir/features/ (see metrics/alignment.json). "
            "The track-only baseline still runs."
        )


def setup_run(params: Params, corpus_dir: Path, kind: str, checkpoint_dir: Path, device: torch.device,
              resume: bool, progress: bool, wall_start: float) -> TrainingRun:  # fmt: skip
    """Loaders, model, task and the Trainer, seeded; restored from `last.pt` when resuming."""
    seed_everything(params.seed)
    config = ModelConfig.from_params(params, kind)
    loaders = create_dataloaders(corpus_dir, params, multimodal=config.multimodal,
                                 distributed=dist_utils.is_distributed())  # fmt: skip
    if len(loaders["train"].dataset) == 0:
        raise ValueError(f"{corpus_dir}: the train split has no videos")
    model = build_model(config).to(device)
    seed_everything(params.seed + dist_utils.rank())  # ranks draw different dropout masks
    complete = checkpoint_dir / COMPLETE_FILE
    # a finished run is never resumed: `dvc repro` after a code change must train afresh
    resume = resume and not complete.exists()
    dist_utils.barrier()
    if dist_utils.is_main():
        complete.unlink(missing_ok=True)
    # the best-val checkpoint lives beside last.pt and is copied to model_path at the end:
    # `dvc repro` deletes a stage's outputs before it runs, also when it resumes
    checkpoints = RunCheckpoints(checkpoint_dir, resume=resume, fingerprint=run_fingerprint(params, kind, corpus_dir),
                                 extra={"kind": kind, "params": json.dumps(params.to_dict())})  # fmt: skip
    # MAEs in the file's units: the corpus is z-scored
    task = EditTask(MultiTrackLoss(params.loss), param_std=param_std(read_track_std(corpus_dir)))
    optimizer = build_optimizer(model, params.train, device)
    trainer = Trainer(
        model, task, optimizer, loaders["train"], loaders["val"], params.train, checkpoints,
        scheduler=build_scheduler(optimizer, params.train), device=device, seed=params.seed, progress=progress,
    )  # fmt: skip
    if resume:
        trainer.restore()
    return TrainingRun(kind, params, corpus_dir, device, loaders, trainer, complete,
                       sum(p.numel() for p in model.parameters()), wall_start)  # fmt: skip


def fit_run(run: TrainingRun) -> None:
    """Every epoch, a checkpoint after each; an error when no epoch gave a finite loss."""
    log.info("training %s model (%d parameters) on %s for %d epochs", run.kind, run.parameters, run.device,
             run.params.train.epochs)  # fmt: skip
    run.trainer.fit()
    dist_utils.barrier()
    if run.trainer.best_epoch < 0:  # never ship a best.pt that an earlier run left behind
        raise TrainingError(
            f"no epoch of the {run.kind} model gave a finite loss ({run.trainer.nan_batches} batches skipped as "
            "non-finite): check train.lr and the loss weights in params.yaml; no model or metrics written"
        )


def choose_decoding(run: TrainingRun, val_evaluation: Any | None) -> Any:
    """The task's decoding, chosen on the videos `train.decoding_on` names: `val_evaluation`
    (the loaded weights' validation windows), and with train+val the train split too, in
    evaluation windows over whole videos.

    On train+val (the default) two knobs are chosen on 34 videos of the default corpus
    instead of 6: chosen on validation alone, the threshold swung from 0.10 to 0.30
    between seeds. The content rule's knobs are chosen on train+val too; the test split
    never chooses.
    """
    evaluations = [] if val_evaluation is None else [val_evaluation]
    if run.params.train.decoding_on == "train+val":
        train = create_dataloaders(run.corpus_dir, run.params, ("train",),
                                   multimodal=run.trainer.raw_model.config.multimodal,
                                   distributed=dist_utils.is_distributed(), evaluation=True)["train"]  # fmt: skip
        run.trainer.evaluate(train, desc="train (decoding)")
        evaluations.append(run.trainer.evaluation)
    return run.trainer.task.choose_decoding(evaluations)


def finish_run(run: TrainingRun, model_path: Path, metrics_path: Path) -> dict[str, Any]:
    """The best-val weights, their toggle head fitted (``fit_toggle_head``) and their decoding
    (`choose_decoding`) saved as the model,
    scored on test as the next stage will read them, and the metrics file written."""
    trainer, loaders = run.trainer, run.loaders
    best, payload = load_checkpoint(trainer.best_path)
    trainer.raw_model.load_state_dict(best.state_dict())
    head = getattr(trainer.raw_model, "toggle", None)
    if head is not None:  # fitted on the train videos after training, as the decoding is chosen (every rank alike)
        fit_toggle_head(head, Corpus(run.corpus_dir), "train", seed=run.params.seed)
    val = trainer.evaluate(loaders["val"], desc="val") if len(loaders["val"].dataset) else {}
    val_evaluation = trainer.evaluation if val else None
    decoding = choose_decoding(run, val_evaluation)
    if val:  # the validation figures under the chosen decoding (one pass over val)
        val.update(trainer.task.video_figures(val_evaluation, decoding))
    if dist_utils.is_main():
        save_checkpoint(model_path, trainer.raw_model, epoch=payload.get("epoch", 0),
                        extra={**payload.get("extra", {}), "cut_decoding": decoding.to_dict()})  # fmt: skip
    dist_utils.barrier()
    # test figures come from the saved model, read back as the next stage will
    best, _ = load_checkpoint(model_path)
    trainer.raw_model.load_state_dict(best.state_dict())
    test = trainer.evaluate(loaders["test"], desc="test", decoding=decoding)
    figures = {k: v for k, v in test.items() if k not in ("frames", "batches", "nan_batches")}
    result = _finite_or_none({"test": figures, "run": _run_record(run, val, decoding, int(test["frames"]))})
    result["facts"] = _run_facts(run)  # gathered on every rank; not a figure, so never in the metrics file
    if dist_utils.is_main():
        write_figures(metrics_path, {k: result[k] for k in ("test", "run")})
        trainer.live.end()
        run.complete.parent.mkdir(parents=True, exist_ok=True)
        run.complete.write_text("training finished; last.pt is kept for inspection and not resumed\n")
    return result


def _run_facts(run: TrainingRun) -> dict[str, Any]:
    """How the run went on this machine: for `runs/`, never for the metrics (they differ run to run)."""
    trainer = run.trainer
    return {
        "wall_time_s": round(time.perf_counter() - run.wall_start, 3),
        "train_time_s": round(trainer.train_seconds, 3),
        "frames_per_s": round(trainer.frames_seen / trainer.train_seconds, 1) if trainer.train_seconds else 0.0,
        "peak_memory_mb": round(max(dist_utils.all_gather_objects(peak_memory_mb(run.device))), 1),
        "device": str(run.device),
    }


def _run_record(run: TrainingRun, val: dict[str, Any], decoding: cuts.CutDecoding, test_frames: int) -> dict[str, Any]:
    trainer = run.trainer
    return {
        "kind": run.kind,
        "epochs": trainer.epoch,
        "best_epoch": trainer.best_epoch + 1,
        # the checkpoint is chosen on validation cut F1; its validation loss for reference
        "best_val_loss": _best_val(trainer, "loss"),
        "val_cut_f1": val.get("cut_f1"),
        "cut_decoding": decoding.to_dict(),
        "frames_seen": trainer.frames_seen,
        "test_frames": test_frames,
        "nan_batches_skipped": trainer.nan_batches,
        "world_size": dist_utils.world_size(),
        "parameters": run.parameters,
        # the resolved params travel in the checkpoint; a digest here keeps `dvc metrics show` readable
        "params_sha256": hashlib.sha256(json.dumps(run.params.to_dict(), sort_keys=True).encode()).hexdigest()[:16],
    }


def _best_val(trainer: Trainer, name: str) -> float | None:
    """A validation figure of the selected epoch (from the history, which a resumed run keeps)."""
    for record in trainer.history:
        if record["epoch"] == trainer.best_epoch:
            return record["val"].get(name)
    return None


def _finite_or_none(obj: Any) -> Any:
    """JSON has no NaN: a figure over nothing (no val videos) is written as null."""
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
