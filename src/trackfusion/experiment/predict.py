"""The `predict` stage: both models rolled out and teacher-forced on a split, the edits exported.

The roll-out itself is :mod:`trackfusion.learn.rollout`; this module scores it on the
corpus' test videos and writes the editors' files (:mod:`trackfusion.io.timeline`).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trackfusion import cuts, schema
from trackfusion.atomic import atomic_dir
from trackfusion.results import write_facts, write_figures
from trackfusion.data.corpus import Corpus
from trackfusion.data.normalization import NORMALIZATION_FILE, load_preprocessors, param_std
from trackfusion.intervals import write_counts
from trackfusion.io.timeline import export_timeline
from trackfusion.layouts import LayoutScore
from trackfusion.learn.checkpoint import load_checkpoint
from trackfusion.learn.dataset import EditWindowDataset, eval_stride
from trackfusion.learn.metrics import EditMetrics
from trackfusion.learn.rollout import decoding_of, rollout, rollout_cuts, teacher_forced, video_batch

log = logging.getLogger(__name__)


def predict_split(
    model: torch.nn.Module,
    corpus_dir: str | Path,
    split: str,
    context: int,
    metrics_factory: Any,
    decoding: cuts.CutDecoding,
    active_threshold: float = 0.5,
    track_std: dict[str, np.ndarray] | None = None,
    teacher_context: int | None = None,
    param_tolerance: float = 0.0,
    state_confidence: float = 1.0,
    recall_placement: bool = False,
    toggle_threshold: float = 0.5,
) -> dict[str, Any]:
    """Roll out and teacher-force every video of a split (``rollout``'s `state_confidence`,
    `recall_placement` and `toggle_threshold`).

    Returns the roll-out metrics, the teacher-forced metrics (the training stage's
    windows and scorer, for a like-for-like table) and per video the true and
    rolled-out frames, in the corpus' (normalised) units.
    """
    model.eval()
    corpus = Corpus(corpus_dir)
    longest = max((v.edit_length for v in corpus.split_videos(split)), default=1)
    dataset = EditWindowDataset(corpus, split, seq_len=longest, stride=longest)  # one window = one whole video
    if len(dataset) == 0:
        raise ValueError(f"{corpus_dir}: split '{split}' has no videos to predict")
    batch = video_batch(dataset)
    start = time.perf_counter()
    ro_out, ro_frames = rollout(model, batch, context, decoding, active_threshold, param_tolerance=param_tolerance,
                                state_confidence=state_confidence, recall_placement=recall_placement,
                                toggle_threshold=toggle_threshold)
    seconds = time.perf_counter() - start
    windows = teacher_context or context
    tf_dataset = EditWindowDataset(corpus, split, seq_len=windows, stride=eval_stride(windows, context))
    tf_cuts = teacher_forced(model, tf_dataset, decoding)

    lengths = batch["padding_mask"].sum(dim=1).tolist()
    videos = {
        vid: {"truth": batch["targets"][i, :n].numpy(), "rollout": ro_frames[i, :n].numpy()}
        for i, (vid, n) in enumerate(zip(dataset.video_ids, lengths))
    }
    acc = metrics_factory(param_std=track_std)
    acc.update(ro_out, batch["targets"], batch["padding_mask"])
    score, same, total = rollout_cuts(videos)
    figures = {
        "teacher_forced": tf_cuts,
        "rollout": {**acc.compute(), **score.figures(), "layout_accuracy": same / total if total else None},
    }
    frames = int(sum(lengths))
    return {
        "metrics": figures,
        "videos": videos,
        "cut_counts": score.per_video,  # each video's rolled-out cut matches (trackfusion.intervals)
        "start_times": {v.video_id: v.start_time for v in dataset.videos},
        "kept": {v.video_id: np.asarray(corpus.array("kept")[v.offset : v.offset + v.length, 0]) for v in dataset.videos},
        "frames": frames,
        "seconds": seconds,
        "frames_per_s": frames / seconds if seconds > 0 else float("nan"),
    }


EXAMPLE_FILE = "example.npz"  # test videos' truth and roll-outs, for the comparison's timeline picture
EXAMPLE_VIDEOS = 2  # the first test videos by id


def _rollout_key(model: str, i: int) -> str:
    return f"{model}_rollout_{i}"


def read_example(path: str | Path) -> list[tuple[np.ndarray, dict[str, np.ndarray], float, str]]:
    """Per example video `(truth, {"<model> roll-out": frames}, fps, video_id)` from the predict stage's
    example file, in the files' units."""
    with np.load(path, allow_pickle=False) as example:
        fps, ids = float(example["fps"]), [str(v) for v in example["video_ids"]]
        suffixes = [f"_rollout_{i}" for i in range(len(ids))]
        out = []
        for i, vid in enumerate(ids):
            models = [k[: -len(suffixes[i])] for k in example.files if k.endswith(suffixes[i])]
            out.append((example[f"truth_{i}"], {f"{m} roll-out": example[_rollout_key(m, i)] for m in models},
                        fps, vid))  # fmt: skip
        return out


def run_predict(
    corpus_dir: str | Path,
    model_paths: dict[str, Path],
    out_dir: str | Path,
    metrics_path: str | Path,
    context: int,
    teacher_context: int | None = None,
    active_threshold: float = 0.5,
    param_tolerance: float = 0.5,
    edit_rate: float | None = None,
    split: str = "test",
    export_model: str = "multimodal",
    facts_path: str | Path | None = None,
    state_confidence: float = 1.0,
    counts_path: str | Path | None = None,
    recall_placement: bool = False,
    toggle_threshold: float = 0.5,
) -> dict[str, Any]:
    """The `predict` stage: roll out every model on a split and export the edits.

    ``<out_dir>/<video_id>.otio`` holds `export_model`'s rolled-out edit of each video
    (the others' go to ``<out_dir>/<model>/``), in the files' units (pixels, percent), at
    `edit_rate` (default: the export's), its recording named by the video id;
    ``<out_dir>/example.npz`` keeps the first ``EXAMPLE_VIDEOS`` videos' true and predicted frames for `compare`;
    `metrics_path` gets the roll-out and teacher-forced figures per model (``layout``: the
    roll-out's ``trackfusion.layouts.LayoutScore`` in the files' units), `counts_path` (if
    given) each video's roll-out counts of cut F1 and layout accuracy per model
    (``trackfusion.intervals``), `facts_path` (if given) each roll-out's wall time and
    frames/s on this machine.
    """
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    _, _, track_pre = load_preprocessors(corpus_dir / NORMALIZATION_FILE)
    track_std = track_pre.column_stats()[1]
    corpus = Corpus(corpus_dir)
    figures: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    example: dict[str, np.ndarray] = {}
    counts: dict[str, dict[str, Any]] = {"cuts": {}, "layout": {}}
    with atomic_dir(out_dir) as tmp:
        for name, path in model_paths.items():
            model, payload = load_checkpoint(path)
            result = predict_split(model, corpus_dir, split, context, EditMetrics, decoding_of(payload),
                                   active_threshold, param_std(track_std), teacher_context, param_tolerance,
                                   state_confidence, recall_placement, toggle_threshold)
            figures[name] = {**result["metrics"], "videos": len(result["videos"]), "frames": result["frames"]}
            facts[name] = {"wall_time_s": round(result["seconds"], 3), "frames_per_s": round(result["frames_per_s"], 1)}
            folder = tmp if name == export_model else tmp / name
            folder.mkdir(exist_ok=True)
            layout = LayoutScore()  # what it shows, in the files' units, scored as the layout references are
            for vid, frames in result["videos"].items():
                kept = result["kept"][vid]  # the layout was rolled out over the true edit's kept frames
                rolled = track_pre.inverse_transform(frames["rollout"])
                layout.add(rolled, track_pre.inverse_transform(frames["truth"]), video_id=vid)
                edit = np.zeros((len(kept), schema.TRACK_WIDTH), np.float32)
                edit[kept] = rolled
                export_timeline(edit, folder / f"{schema.check_video_id(vid)}.otio", fps=corpus.fps,
                                name=f"{vid} ({name} roll-out)", start_time=result["start_times"][vid],
                                media_names={0: vid}, rate=edit_rate,  # class 0: the recording (ASSET_CLASSES)
                                param_tolerance=param_tolerance * track_std,  # std units -> file units
                                kept=None if kept.all() else kept)
            figures[name]["layout"] = layout.figures()
            counts["cuts"][name], counts["layout"][name] = result["cut_counts"], layout.per_video
            shown = sorted(result["videos"])[:EXAMPLE_VIDEOS]
            example["video_ids"], example["fps"] = np.array(shown), np.array(corpus.fps)
            for i, vid in enumerate(shown):
                example[f"truth_{i}"] = track_pre.inverse_transform(result["videos"][vid]["truth"])
                example[_rollout_key(name, i)] = track_pre.inverse_transform(result["videos"][vid]["rollout"])
            log.info("%s on %d %s videos: roll-out cut_f1 %.4f, teacher-forced cut_f1 %.4f (%.0f frames/s)", name,
                     len(result["videos"]), split, result["metrics"]["rollout"]["cut_f1"],
                     result["metrics"]["teacher_forced"]["cut_f1"], result["frames_per_s"])
        with open(tmp / EXAMPLE_FILE, "wb") as fh:
            np.savez(fh, **example)
    if counts_path is not None:
        write_counts(counts_path, counts)
    write_figures(metrics_path, figures)
    if facts_path is not None:
        write_facts(facts_path, facts)
    return figures
