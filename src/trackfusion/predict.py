"""Generating an edit: teacher-forced prediction and the autoregressive roll-out.

Teacher forcing feeds the true previous frame, as in training; it measures how well a
model continues an edit it is shown. The roll-out is what an editor gets for a new
recording: the model's own previous prediction (active thresholded, asset by argmax)
is the next frame's track input, and no true frame after the first is ever read.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from trackfusion import schema
from trackfusion.dataset import MultimodalDataset, collate_windows
from trackfusion.model import decode_frames

log = logging.getLogger(__name__)

HEADS = ("active", "asset", "scale", "position", "crop")


def video_batch(dataset: MultimodalDataset) -> dict[str, torch.Tensor]:
    """Every video of the dataset as one whole-video window, padded into one batch.

    The dataset must have been built with ``seq_len`` >= the longest video, so that each
    item is a whole video.
    """
    return collate_windows([dataset[i] for i in range(len(dataset))])


@torch.no_grad()
def teacher_forced(model: torch.nn.Module, batch: dict[str, torch.Tensor], context: int) -> dict[str, torch.Tensor]:
    """Head outputs for every frame, from non-overlapping windows of `context` frames.

    Windows restart the context exactly as the training's evaluation does, so these
    figures match the test metrics of the training stage.
    """
    B, T = batch["track"].shape[:2]
    outs: list[dict[str, torch.Tensor]] = []
    for s in range(0, T, context):
        window = {k: v[:, s : s + context] for k, v in batch.items() if v.dim() >= 2}
        outs.append(model.forward_batch(window))
    return {k: torch.cat([o[k] for o in outs], dim=1) for k in HEADS}  # (B, T, ...)


@torch.no_grad()
def rollout(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], context: int, threshold: float = 0.5, progress: bool = True
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Autoregressive roll-out of all videos in the batch at once.

    Frame t's track input is the decoded prediction of frame t-1; the only true frame
    read is frame 0 (the opening layout is given: the input of frame 1). Each step runs
    the causal model on the last `context` frames and keeps its output at frame t.
    Returns the head outputs (B, T, ...) and the track inputs used (B, T, 180).
    """
    targets = batch["targets"]
    B, T = targets.shape[:2]
    lengths = batch["padding_mask"].sum(dim=1)  # (B,)
    inputs = torch.zeros_like(targets)  # (B, T, 180): inputs[:, t] = state given for frame t-1
    if T > 1:
        inputs[:, 1] = targets[:, 0]  # the one true frame the roll-out may see
    outputs: dict[str, torch.Tensor] = {}
    for t in tqdm(range(T), desc="roll-out", unit="frame", disable=not progress, leave=False):
        rows = torch.nonzero(lengths > t).squeeze(1)  # videos still running: no all-padding window
        lo = max(0, t + 1 - context)
        window = {k: v[rows, lo : t + 1] for k, v in batch.items() if v.dim() >= 2 and k != "targets"}
        window["track"] = inputs[rows, lo : t + 1]
        out = model.forward_batch(window)
        step = {k: out[k][:, -1] for k in HEADS}  # (b, ...): causal, so frame t saw frames <= t only
        for k in HEADS:
            if k not in outputs:
                outputs[k] = torch.zeros((B, T, *step[k].shape[1:]), dtype=step[k].dtype)
            outputs[k][rows, t] = step[k]
        if 1 <= t < T - 1:
            inputs[rows, t + 1] = decode_frames({k: v.unsqueeze(1) for k, v in step.items()}, threshold)[:, 0]
    return outputs, inputs


def predict_split(
    model: torch.nn.Module,
    corpus_dir: str | Path,
    split: str,
    context: int,
    metrics_factory: Any,
    threshold: float = 0.5,
    track_std: np.ndarray | None = None,
) -> dict[str, Any]:
    """Roll out and teacher-force every video of a split.

    Returns the roll-out metrics, the teacher-forced metrics (from the same code on the
    same frames, for a like-for-like table) and per video the decoded frames of both
    modes, in the corpus' (normalised) units.
    """
    model.eval()
    probe = MultimodalDataset(corpus_dir, split, seq_len=1, stride=1)
    longest = int(probe.lengths.max()) if len(probe.lengths) else 1
    dataset = MultimodalDataset(corpus_dir, split, seq_len=longest, stride=longest)
    if len(dataset) == 0:
        raise ValueError(f"{corpus_dir}: split '{split}' has no videos to predict")
    batch = video_batch(dataset)
    valid = batch["padding_mask"] & batch["frame_mask"]  # (B, T): real frames that have a previous frame

    start = time.perf_counter()
    tf_out = teacher_forced(model, batch, context)
    ro_out, ro_inputs = rollout(model, batch, context, threshold)
    seconds = time.perf_counter() - start

    figures = {}
    for mode, out, prev in (("teacher_forced", tf_out, batch["track"]), ("rollout", ro_out, ro_inputs)):
        acc = metrics_factory(track_std=track_std) if track_std is not None else metrics_factory()
        acc.update(out, batch["targets"], prev, valid)
        figures[mode] = acc.compute()
    tf_frames = decode_frames(tf_out, threshold)
    ro_frames = decode_frames(ro_out, threshold)
    ro_frames[:, 0] = batch["targets"][:, 0]  # frame 0 is given, not predicted
    lengths = batch["padding_mask"].sum(dim=1).tolist()
    videos = {
        vid: {
            "truth": batch["targets"][i, :n].numpy(),
            "teacher_forced": tf_frames[i, :n].numpy(),
            "rollout": ro_frames[i, :n].numpy(),
        }
        for i, (vid, n) in enumerate(zip(dataset.video_ids, lengths))
    }
    frames = int(sum(lengths))
    return {
        "metrics": figures,
        "videos": videos,
        "start_times": {v.video_id: v.start_time for v in dataset.videos},
        "frames": frames,
        "seconds": seconds,
        "frames_per_s": frames / seconds if seconds > 0 else float("nan"),
    }


def to_track_units(frames: np.ndarray, track_mean: np.ndarray, track_std: np.ndarray) -> np.ndarray:
    """Undo the z-score of the continuous track parameters on active track-frames."""
    out = frames.astype(np.float32).copy()  # (T, 180)
    active = out[:, schema.track_columns("active")] > 0.5  # (T, 20)
    for name in schema.TRACK_CONTINUOUS:
        cols = schema.track_columns(name)
        out[:, cols] = np.where(active, out[:, cols] * track_std[cols] + track_mean[cols], 0.0)
    return out
