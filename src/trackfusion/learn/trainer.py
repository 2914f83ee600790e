"""The training loop: one function for train and eval, checkpoints, resume, DVCLive, DDP.

`Trainer.run_epoch(loader, train)` is the only loop: training and validation differ by
the flag alone (gradients, optimizer step and dropout). `Trainer.fit` runs the epochs,
logs every figure of both splits to DVCLive, keeps the best-val checkpoint (chosen by
the task's `selection_score`) and a resume checkpoint. What is learned and scored is
the `Task`'s (`trackfusion.learn.task`); the stage's recipe is `trackfusion.learn.recipe`.

Under torchrun the model is wrapped in DistributedDataParallel; epoch figures are sums
and counts all-reduced over ranks (never an average of per-rank averages), and only
rank 0 writes DVCLive files and checkpoints.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from trackfusion.results import round_figure
from trackfusion.learn import distributed as dist_utils
from trackfusion.learn.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from trackfusion.learn.runtime import resolve_device, rng_state, set_epoch, set_rng_state
from trackfusion.learn.task import FrameMetrics, Task, VideoEvaluation
from trackfusion.params import TrainParams

log = logging.getLogger(__name__)

RESUME_FILE = "last.pt"
RESUME_VERSION = 2  # 2: last.pt is a checkpoint of trackfusion.learn.checkpoint's one format


class _BatchForward(nn.Module):
    """Calls `model.forward_batch(batch)` as `forward`, so DDP and torch.compile see it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.model.forward_batch(batch)


@dataclass
class RunCheckpoints:
    """Where a run keeps its checkpoints, and which ``last.pt`` it may continue from."""

    dir: Path
    best: Path | None = None  # the best-val checkpoint (lowest task selection score); default dir/best.pt
    resume: bool = False  # continue from dir/last.pt when it exists and its fingerprint matches
    fingerprint: str = ""  # what a resumable last.pt must have been written with (params, code, corpus)
    extra: dict[str, Any] = field(default_factory=dict)  # plain values stored in every checkpoint

    def __post_init__(self) -> None:
        self.dir = Path(self.dir)
        self.best = self.dir / "best.pt" if self.best is None else Path(self.best)


class Trainer:
    """Train `model` on `task` with `optimizer` on `train_loader`, select on `val_loader`.

    Every collaborator comes ready-made (see `trackfusion.learn.recipe.setup_run`); the
    Trainer owns the loop, the device placement, DDP, autocast and the checkpoints
    described by `checkpoints`; the task owns the loss, the metrics, the checkpoint
    selection and the decoding. train_metrics: also accumulate the task's frame metrics
    on train batches (logged as train/...). DVCLive is attached with `attach_live`.
    """

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        optimizer: torch.optim.Optimizer,
        train_loader: Iterable[dict[str, torch.Tensor]],
        val_loader: Iterable[dict[str, torch.Tensor]] | None,
        train_params: TrainParams,
        checkpoints: RunCheckpoints,
        *,
        scheduler: Any = None,
        device: str | torch.device = "auto",
        seed: int = 0,
        train_metrics: bool = True,
        progress: bool = True,
    ):
        self.device = dist_utils.local_device(resolve_device(device))
        self.raw_model = model.to(self.device)
        self.task = task
        task.loss.to(self.device)
        self.optimizer = optimizer
        self.scheduler = scheduler  # stepped once per epoch
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.params = train_params
        self.checkpoints = checkpoints
        self.live: Any = None
        self.seed = seed
        self.train_metrics = train_metrics
        self.progress = progress and dist_utils.is_main()

        self.model: nn.Module = _BatchForward(self.raw_model)
        if train_params.compile:
            self.model = torch.compile(self.model)
        self.eval_model = self.model  # without DDP: see run_epoch
        if dist_utils.is_distributed():
            # every parameter takes part in each forward (a disabled modality has no
            # parameters, a masked one still runs its embedding), so no unused-parameter search
            self.model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        # bf16 autocast on CUDA (no loss scaling needed, unlike fp16); fp32 on CPU
        self.autocast = (
            (lambda: torch.autocast("cuda", dtype=torch.bfloat16))
            if self.device.type == "cuda"
            else contextlib.nullcontext
        )

        self.epoch = 0  # next epoch to run
        self.best_val = math.inf
        self.best_epoch = -1
        self.history: list[dict[str, Any]] = []
        self.nan_batches = 0
        self.frames_seen = 0
        self.train_seconds = 0.0
        self.evaluation: VideoEvaluation | None = None  # the last evaluation's whole videos (all ranks')
        self._restored = False

    # --- the loop ------------------------------------------------------------------
    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def run_epoch(
        self,
        loader: Iterable[dict[str, torch.Tensor]],
        train: bool,
        desc: str = "",
        decoding: Any | None = None,
    ) -> dict[str, float]:
        """One pass over `loader`; returns the loss components (frame-weighted means over
        all ranks), the task's frame metrics, `frames`, `batches` and `nan_batches`.

        train=False also scores the task's whole-video evaluation: under `decoding` when
        given (test), else under the one that scores best on this split (validation).

        train=True: dropout on, backward, gradient clipping, optimizer step. A batch with
        a non-finite loss, or non-finite gradients after clipping, is skipped with a
        warning and counted, and the weights are left as they were.
        """
        self.model.train(train)
        # eval uses the unwrapped module: ranks may hold different numbers of eval batches,
        # and DDP's forward must not wait for a rank that has finished
        forward = self.model if train else self.eval_model
        task = self.task
        acc = task.frame_metrics() if (self.train_metrics or not train) else None
        evaluation = None if train else task.video_evaluation()
        keys: list[str] | None = None
        sums: torch.Tensor | None = None  # (K,) loss component sums weighted by frames, on device
        frames = 0
        batches = 0
        skipped = 0
        params = [p for p in self.raw_model.parameters() if p.requires_grad]
        grad_ctx = contextlib.nullcontext if train else torch.no_grad
        bar = tqdm(loader, desc=desc or ("train" if train else "eval"), unit="batch", leave=False,
                   disable=not self.progress)  # fmt: skip
        for batch in bar:
            batch = self._to_device(batch)
            counted = batch["padding_mask"]  # train on every frame; evaluate each frame once, in its scored window
            if not train and "scored" in batch:
                counted = counted & batch["scored"]
            with grad_ctx(), self.autocast():
                outputs = forward(batch)
                losses = task.losses(outputs, batch, counted)
            if keys is None:
                keys = ["loss"] + [k for k in losses if k != "total"]
            values = torch.stack([losses["total"].detach().float()] + [losses[k].detach().float() for k in keys[1:]])
            bad = not bool(torch.isfinite(values).all())
            if train:
                bad = dist_utils.any_rank(bad, self.device)  # every rank skips together under DDP
            if not bad and train:
                self.optimizer.zero_grad(set_to_none=True)
                losses["total"].backward()
                norm = torch.nn.utils.clip_grad_norm_(params, self.params.grad_clip)
                if torch.isfinite(norm):  # DDP averaged the grads: the norm is the same on every rank
                    self.optimizer.step()
                else:
                    bad = True
                self.optimizer.zero_grad(set_to_none=True)
            if bad:
                skipped += 1
                log.warning("%s batch %d: non-finite loss or gradient, skipped (%d so far)", desc, batches, skipped)
                continue
            n = int(counted.sum())
            sums = values * n if sums is None else sums + values * n
            frames += n
            batches += 1
            if acc is not None:
                with torch.no_grad():
                    task.update_frame_metrics(acc, outputs, batch, counted)
            if evaluation is not None:
                evaluation.add(outputs, batch)
            if self.progress and batches % 10 == 0:
                bar.set_postfix(loss=f"{float(values[0]):.4f}")

        totals = {"frames": float(frames), "batches": float(batches), "nan_batches": float(skipped)}
        if keys is not None and sums is not None:
            totals.update({k: float(v) for k, v in zip(keys, sums.tolist())})
        totals = dist_utils.all_reduce_sum(totals, self.device)  # sums and counts of all ranks
        result = {k: totals[k] / totals["frames"] if totals["frames"] else math.nan
                  for k in totals if k not in ("frames", "batches", "nan_batches")}  # fmt: skip
        if acc is not None:
            result.update(self._compute_metrics(acc))
        if evaluation is not None:
            result.update(self._video_figures(evaluation, decoding))
        result.update(frames=totals["frames"], batches=totals["batches"], nan_batches=totals["nan_batches"])
        return result

    def _compute_metrics(self, acc: FrameMetrics) -> dict[str, float]:
        """The frame metrics over all ranks: per-rank counts summed, then computed once."""
        if dist_utils.is_distributed():
            acc.counts = dist_utils.all_reduce_sum(acc.counts, self.device)
        return {k: v if v is None or isinstance(v, int) else float(v) for k, v in acc.compute().items()}

    def _video_figures(self, evaluation: VideoEvaluation, decoding: Any | None) -> dict[str, float]:
        """The whole-video figures, after gathering every rank's windows."""
        if dist_utils.is_distributed():
            evaluation.merge(dist_utils.all_gather_objects(evaluation.state))
        self.evaluation = evaluation  # every rank's videos: what the recipe chooses the decoding on
        return self.task.video_figures(evaluation, decoding)

    def evaluate(
        self, loader: Iterable[dict[str, torch.Tensor]], desc: str = "eval", decoding: Any | None = None
    ) -> dict[str, float]:
        return self.run_epoch(loader, train=False, desc=desc, decoding=decoding)

    # --- epochs, checkpoints, logging ----------------------------------------------------
    @property
    def resume_path(self) -> Path:
        return self.checkpoints.dir / RESUME_FILE

    @property
    def best_path(self) -> Path:
        return self.checkpoints.best

    def fit(self, epochs: int | None = None) -> list[dict[str, Any]]:
        """Train until `epochs` (default train.epochs) epochs are done; returns the history."""
        epochs = self.params.epochs if epochs is None else epochs
        if self.checkpoints.resume and not self._restored:
            self.restore()
        for epoch in range(self.epoch, epochs):
            set_epoch(self.train_loader, epoch, self.seed)
            start = time.perf_counter()
            train = self.run_epoch(self.train_loader, train=True, desc=f"epoch {epoch + 1}/{epochs} train")
            self.train_seconds += time.perf_counter() - start
            self.frames_seen += int(train["frames"])
            self.nan_batches += int(train["nan_batches"])
            val = (self.run_epoch(self.val_loader, train=False, desc=f"epoch {epoch + 1}/{epochs} val")
                   if self.val_loader is not None else {})  # fmt: skip
            select = self.task.selection_score(train, val)
            record = {"epoch": epoch, "train": train, "val": val}
            self.history.append(record)
            log.info(
                "epoch %d/%d: train loss %.4f, val loss %.4f, %.0f frames/s, %d batches skipped",
                epoch + 1, epochs, train.get("loss", math.nan), val.get("loss", math.nan),
                train["frames"] / max(time.perf_counter() - start, 1e-9), int(train["nan_batches"]),
            )  # fmt: skip
            self._log_live(train, val)
            if math.isfinite(select) and select < self.best_val:
                self.best_val = select
                self.best_epoch = epoch
                self._save_best(epoch)
            self.epoch = epoch + 1
            if self.scheduler is not None:
                self.scheduler.step()
            self._save_resume()
        return self.history

    def attach_live(self, live: Any) -> None:
        """Log to `live` (DVCLive) from now on, after replaying the epochs already in the history:
        `dvc repro` deletes the curves folder (a stage output) before a resumed run continues."""
        self.live = live if dist_utils.is_main() else None
        for record in self.history:
            self._log_live(record["train"], record["val"])

    def _log_live(self, train: dict[str, float], val: dict[str, float]) -> None:
        if self.live is None:
            return
        for split, figures in (("train", train), ("val", val)):
            for name, value in figures.items():
                if name not in ("frames", "batches") and value is not None and math.isfinite(value):
                    self.live.log_metric(f"{split}/{name}", round_figure(value))  # curves reproduce as figures do
        self.live.next_step()

    def _save_best(self, epoch: int) -> None:
        if not dist_utils.is_main():
            return
        extra = {**self.checkpoints.extra, "best_val_selection": self.best_val}  # the task's selection score
        save_checkpoint(self.best_path, self.raw_model, epoch=epoch, extra=extra)

    def _save_resume(self) -> None:
        """last.pt: a checkpoint of the one format (`trackfusion.learn.checkpoint`) whose optimizer
        state and `extra` hold everything needed to continue as if never interrupted (all ranks' RNGs)."""
        rngs = dist_utils.all_gather_objects(rng_state())
        if dist_utils.is_main():
            extra = {
                "resume_version": RESUME_VERSION,
                "fingerprint": self.checkpoints.fingerprint,
                "best_val": self.best_val,
                "best_epoch": self.best_epoch,
                "history": json.dumps(self.history),
                "nan_batches": self.nan_batches,
                "frames_seen": self.frames_seen,
                "train_seconds": self.train_seconds,
                "rng": rngs,
            }
            self.checkpoints.dir.mkdir(parents=True, exist_ok=True)
            save_checkpoint(self.resume_path, self.raw_model, optimizer=self.optimizer, scheduler=self.scheduler,
                            epoch=self.epoch, extra=extra)  # fmt: skip
        dist_utils.barrier()

    def restore(self) -> bool:
        """Load checkpoint_dir/last.pt if it exists and matches; True if training continues from it."""
        self._restored = True
        path = self.resume_path
        if not path.exists():
            return False
        try:
            payload = read_checkpoint(path)  # weights_only; RNG states come back as CPU tensors
        except (CheckpointError, OSError) as e:  # truncated or corrupt (a crash mid-write, a bad disk, an old
            # format): never block training for good
            log.warning("%s is unreadable (%s); starting from scratch", path, str(e)[:200])
            return False
        state = payload.get("extra") or {}
        if state.get("resume_version") != RESUME_VERSION or state.get("fingerprint") != self.checkpoints.fingerprint:
            log.warning("%s was written by a run with other params, code or data; starting from scratch", path)
            return False
        self.raw_model.load_state_dict(payload["model_state"])
        self.optimizer.load_state_dict(payload["optimizer_state"])
        if self.scheduler is not None and payload.get("scheduler_state") is not None:
            self.scheduler.load_state_dict(payload["scheduler_state"])
        self.epoch = int(payload["epoch"])
        self.best_val = float(state["best_val"])
        self.best_epoch = int(state["best_epoch"])
        self.history = json.loads(state["history"])
        self.nan_batches = int(state["nan_batches"])
        self.frames_seen = int(state["frames_seen"])
        self.train_seconds = float(state["train_seconds"])
        rngs = state["rng"]
        set_rng_state(rngs[dist_utils.rank()] if len(rngs) == dist_utils.world_size() else rngs[0])
        log.info("resumed from %s after epoch %d (best epoch %d)", path, self.epoch, self.best_epoch + 1)
        return True
