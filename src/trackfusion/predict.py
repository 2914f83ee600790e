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

from trackfusion.atomic import atomic_dir, write_json
from trackfusion.checkpoint import load_checkpoint
from trackfusion.corpus import Corpus
from trackfusion.dataset import MultimodalDataset, collate_windows, read_track_std
from trackfusion.metrics import EditMetrics
from trackfusion.model import decode_frames
from trackfusion.normalization import NORMALIZATION_FILE, load_preprocessors
from trackfusion.timeline import export_timeline
from trackfusion.training import param_std

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
    track_std: dict[str, np.ndarray] | None = None,
    teacher_context: int | None = None,
) -> dict[str, Any]:
    """Roll out and teacher-force every video of a split.

    Returns the roll-out metrics, the teacher-forced metrics (from the same code on the
    same frames, for a like-for-like table) and per video the decoded frames of both
    modes, in the corpus' (normalised) units.
    """
    model.eval()
    corpus = Corpus(corpus_dir)
    longest = max((v.length for v in corpus.split_videos(split)), default=1)
    dataset = MultimodalDataset(corpus, split, seq_len=longest, stride=longest)  # one window = one whole video
    if len(dataset) == 0:
        raise ValueError(f"{corpus_dir}: split '{split}' has no videos to predict")
    batch = video_batch(dataset)
    start = time.perf_counter()
    tf_out = teacher_forced(model, batch, teacher_context or context)
    ro_out, ro_inputs = rollout(model, batch, context, threshold)
    seconds = time.perf_counter() - start

    figures = {}
    for mode, out, prev in (("teacher_forced", tf_out, batch["track"]), ("rollout", ro_out, ro_inputs)):
        acc = metrics_factory(param_std=track_std)
        acc.update(out, batch["targets"], prev, batch["padding_mask"], batch["frame_mask"], true_prev=batch["track"])
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


def run_predict(
    corpus_dir: str | Path,
    model_paths: dict[str, Path],
    out_dir: str | Path,
    metrics_path: str | Path,
    context: int,
    teacher_context: int | None = None,
    threshold: float = 0.5,
    param_tolerance: float = 0.5,
    split: str = "test",
    export_model: str = "multimodal",
) -> dict[str, Any]:
    """The `predict` stage: roll out every model on a split and export the edits.

    ``<out_dir>/<video_id>.otio`` holds `export_model`'s rolled-out edit of each video
    (the others' go to ``<out_dir>/<model>/``), in the files' units (pixels, percent);
    ``<out_dir>/example.npz`` keeps one video's true and predicted frames for `compare`;
    `metrics_path` gets the roll-out and teacher-forced figures per model.
    """
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    _, _, track_pre = load_preprocessors(corpus_dir / NORMALIZATION_FILE)
    track_std = read_track_std(corpus_dir)
    corpus = Corpus(corpus_dir)
    figures: dict[str, Any] = {}
    example: dict[str, np.ndarray] = {}
    with atomic_dir(out_dir) as tmp:
        for name, path in model_paths.items():
            model, _ = load_checkpoint(path)
            result = predict_split(model, corpus_dir, split, context, EditMetrics, threshold, param_std(track_std),
                                   teacher_context)
            figures[name] = {**result["metrics"], "videos": len(result["videos"]), "frames": result["frames"],
                             "seconds": round(result["seconds"], 3), "frames_per_s": round(result["frames_per_s"], 1)}
            folder = tmp if name == export_model else tmp / name
            folder.mkdir(exist_ok=True)
            for vid, frames in result["videos"].items():
                edit = track_pre.inverse_transform(frames["rollout"])
                export_timeline(edit, folder / f"{vid}.otio", fps=corpus.fps, name=f"{vid} ({name} roll-out)",
                                start_time=result["start_times"][vid], param_tolerance=param_tolerance)
            vid = sorted(result["videos"])[0]
            example["video_id"], example["fps"] = np.array(vid), np.array(corpus.fps)
            example["truth"] = track_pre.inverse_transform(result["videos"][vid]["truth"])
            for mode in ("teacher_forced", "rollout"):
                example[f"{name}_{mode}"] = track_pre.inverse_transform(result["videos"][vid][mode])
            log.info("%s on %d %s videos: roll-out cut_f1 %.4f, teacher-forced cut_f1 %.4f (%.0f frames/s)", name,
                     len(result["videos"]), split, result["metrics"]["rollout"]["cut_f1"],
                     result["metrics"]["teacher_forced"]["cut_f1"], result["frames_per_s"])
        with open(tmp / "example.npz", "wb") as fh:
            np.savez(fh, **example)
    write_json(metrics_path, figures)
    return figures
