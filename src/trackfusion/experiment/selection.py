"""The `select` stage: the selection model trained and scored beside its references, on the same
test videos, at the same target, by one scorer (``trackfusion.selection.SelectionScore``).

On test the target is each video's true edit length (as summarisation benchmarks do), so
every predictor is read on *which* frames it keeps, not on how many; the same figures at
``select.target_ratio`` of each recording are reported too (``at_default_ratio``), where
the length is the predictor's to get wrong. References:

- ``keep_all``: the whole recording.
- ``random``: random stretches (scores drawn per block of the train split's mean kept
  stretch), decoded to the target; the mean over ``RANDOM_DRAWS`` seeded draws.
- ``loudness_rule``: auto-editor's method: keep what is loud (``audio_energy_rms``), with
  a margin and minimum clip and cut lengths; the threshold is what reaches the target,
  margin and minimums chosen on train+val.
- ``content_rule``: the same over a sum of raw features a user could write down: speech,
  loudness, motion and a recent scene change, smoothed; weights, smoothing and decoding
  chosen on train+val. It cannot see a menu screen (only CLIP shows one).
- ``ceiling`` (synthetic corpus only): the editor's selection without its noise.

The rules read the *aligned* corpus (features in their own units), the model the
normalised one.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from trackfusion import schema, selection
from trackfusion.data.corpus import Corpus
from trackfusion.experiment.references import best_on_grid
from trackfusion.intervals import PER_VIDEO, mean_counts, pop_video_counts, write_counts
from trackfusion.learn.selection_model import (
    keep_scores,
    params_decoding,
    read_recordings,
    save_selection,
    train_selection,
)
from trackfusion.params import Params
from trackfusion.results import write_facts, write_figures

log = logging.getLogger(__name__)

RANDOM_DRAWS = 10
TUNE_SPLITS = ("train", "val")
DECODING_GRID = {
    "margin_before_s": (0.0, 0.5),
    "margin_after_s": (0.0, 0.5, 1.0),
    "min_clip_s": (1.0, 2.0, 3.0),
    "min_gap_s": (0.5, 1.5),
}
RULE_GRID = {"speech": (0.0, 0.3), "motion": (0.0, 0.5, 1.0), "scene": (0.0, 0.5), "smooth_s": (1.0, 2.0, 4.0)}
SCENE_RECENT_S = 3.0  # the content rule counts a scene change this long after it

_AUDIO = [c.name for c in schema.AUDIO_INPUTS]
_VISUAL = [c.name for c in schema.VISUAL_SCALARS]


class RawVideo:
    """One video's true kept flags and the raw signals the rules read (NaN where unavailable)."""

    def __init__(self, video_id: str, split: str, arrays: dict[str, np.ndarray], fps: float):
        self.video_id, self.split, self.fps = video_id, split, fps
        self.kept = np.asarray(arrays["kept"][:, 0], bool)
        audio_ok, visual_ok = arrays["mask"][:, 0].astype(bool), arrays["mask"][:, 1].astype(bool)
        audio = np.where(audio_ok[:, None], arrays["audio"], np.nan)
        visual = np.where(visual_ok[:, None], arrays["visual"], np.nan)
        self.rms = audio[:, _AUDIO.index("audio_energy_rms")]
        self.speaking = audio[:, _AUDIO.index("audio_is_speaking")]
        self.motion = visual[:, _VISUAL.index("visual_motion")]
        self.scene = visual[:, _VISUAL.index("scene_change")]

    @property
    def target(self) -> int:
        return int(self.kept.sum())


def loudness_scores(v: RawVideo) -> np.ndarray:
    return np.nan_to_num(v.rms, nan=0.0)


def content_rule_scores(v: RawVideo, speech: float, motion: float, scene: float, smooth_s: float) -> np.ndarray:
    recent = int(round(SCENE_RECENT_S * v.fps))
    scene_x = np.nan_to_num(v.scene, nan=0.0)
    held = np.lib.stride_tricks.sliding_window_view(np.pad(scene_x, (recent - 1, 0)), recent).max(1)  # last 3 s
    raw = loudness_scores(v) + speech * np.nan_to_num(v.speaking) + motion * np.nan_to_num(v.motion) + scene * held
    return selection.smooth(raw, int(round(smooth_s * v.fps)))


def random_scores(v: RawVideo, block: int, rng: np.random.Generator) -> np.ndarray:
    return np.repeat(rng.random(-(-len(v.kept) // block)), block)[: len(v.kept)]


def score_at(videos: list[RawVideo], scores: Callable[[RawVideo], np.ndarray], decoding: selection.SelectionDecoding,
             target: Callable[[RawVideo], int]) -> selection.SelectionScore:
    """Each video's scores decoded to its target, scored against its true kept flags."""
    result = selection.SelectionScore()
    for v in videos:
        result.add(selection.decode_to_length(scores(v), v.fps, decoding, target(v)), v.kept, v.fps, v.video_id)
    return result


def _row(s: selection.SelectionScore) -> dict[str, Any]:
    """A reference row: the figures, and each video's counts (``intervals.PER_VIDEO``) until written apart."""
    return {**s.to_dict(), PER_VIDEO: s.per_video}


def _true_length(v: RawVideo) -> int:
    return v.target


def tune(grid: dict[str, Iterable[Any]], kept_f1: Callable[..., float]) -> dict[str, Any]:
    """The grid point with the best kept F1 (``references.best_on_grid``), the figure beside it."""
    best, f1 = best_on_grid(grid, kept_f1)
    return {**best, "tuned_kept_f1": round(f1, 6)}


def _tuned_decoding(videos: list[RawVideo], scores: Callable[[RawVideo], np.ndarray]) -> dict[str, Any]:
    return tune(DECODING_GRID,
                lambda **d: score_at(videos, scores, selection.SelectionDecoding(**d), _true_length).kept_f1)


def read_selection_ceiling(raw_dir: str | Path, key: str = "selection") -> dict[str, list[list[int]]] | None:
    """The noiseless editor's kept segments per video (``selection``; ``selection_at_length``: asked for the
    real edit's length), or None where the corpus has none."""
    path = Path(raw_dir) / schema.CEILING_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get(key)


def references(aligned_dir: str | Path, raw_dir: str | Path | None, decoding: selection.SelectionDecoding,
               ratio: float, split: str = "test") -> tuple[dict[str, Any], dict[str, Any]]:
    """Every reference scored on `split` at the true length and at `ratio`; knobs from train+val only. Each row
    carries its per-video counts (``intervals.PER_VIDEO``) until the stage writes them apart."""
    corpus = Corpus(aligned_dir)

    def load(splits: Iterable[str]) -> list[RawVideo]:
        return [RawVideo(v.video_id, v.split, corpus.video_arrays(v.video_id), corpus.fps)
                for s in splits for v in corpus.split_videos(s) if v.length > 0]

    test, tuning = load([split]), load(TUNE_SPLITS)
    train = [v for v in tuning if v.split == "train"]
    at_ratio = lambda v: int(round(ratio * len(v.kept)))  # noqa: E731
    segs = [selection.segments(v.kept) for v in train]
    runs = np.concatenate([s[:, 1] - s[:, 0] for s in segs]) if segs else np.zeros(0)
    block = max(int(runs.mean()) if len(runs) else 1, 1)
    rate = float(np.mean([v.kept.mean() for v in train])) if train else 0.0
    rows: dict[str, dict[str, Any]] = {}
    ratio_rows: dict[str, dict[str, Any]] = {}

    keep_all = selection.SelectionScore()
    for v in test:
        keep_all.add(np.ones(len(v.kept), bool), v.kept, v.fps, v.video_id)
    ratio_rows["keep_all"] = {**keep_all.to_dict(), "how": "the whole recording"}
    rows["keep_all"] = {**ratio_rows["keep_all"], PER_VIDEO: keep_all.per_video}

    def random_row(target: Callable[[RawVideo], int]) -> dict[str, Any]:
        scores = [score_at(test, lambda v, r=np.random.default_rng([i, 11]): random_scores(v, block, r), decoding,
                           target) for i in range(RANDOM_DRAWS)]
        draws = [s.to_dict() for s in scores]
        row = {k: float(np.mean([d[k] for d in draws])) for k in draws[0]}
        return {**row, "kept_f1_sd": float(np.std([d["kept_f1"] for d in draws])), "train_keep_rate": round(rate, 6),
                "how": f"random stretches of about {block / corpus.fps:.1f} s (the train mean), mean of "
                       f"{RANDOM_DRAWS} draws", PER_VIDEO: mean_counts(s.per_video for s in scores)}
    rows["random"], ratio_rows["random"] = random_row(_true_length), random_row(at_ratio)

    loud = _tuned_decoding(tuning, loudness_scores)
    loud_decoding = selection.SelectionDecoding(**{k: loud[k] for k in DECODING_GRID})
    how = (f"keep where audio_energy_rms is highest, margins {loud['margin_before_s']:g} s / "
           f"{loud['margin_after_s']:g} s, clips >= {loud['min_clip_s']:g} s, cuts >= {loud['min_gap_s']:g} s "
           "(auto-editor's method; chosen on train+val)")
    for table, target in ((rows, _true_length), (ratio_rows, at_ratio)):
        table["loudness_rule"] = {**_row(score_at(test, loudness_scores, loud_decoding, target)), **loud, "how": how}

    weights = tune(RULE_GRID, lambda **w: score_at(
        tuning, lambda v: content_rule_scores(v, **w), loud_decoding, _true_length).kept_f1)
    knobs = {k: weights[k] for k in RULE_GRID}
    rule = _tuned_decoding(tuning, lambda v: content_rule_scores(v, **knobs))
    rule_decoding = selection.SelectionDecoding(**{k: rule[k] for k in DECODING_GRID})
    how = (f"keep where audio_energy_rms + {knobs['speech']:g} x speaking + {knobs['motion']:g} x visual_motion + "
           f"{knobs['scene']:g} x a scene change in the last {SCENE_RECENT_S:g} s, over {knobs['smooth_s']:g} s, "
           f"is highest (weights and decoding chosen on train+val)")
    for table, target in ((rows, _true_length), (ratio_rows, at_ratio)):
        table["content_rule"] = {**_row(score_at(test, lambda v: content_rule_scores(v, **knobs), rule_decoding,
                                                 target)), **knobs, **rule, "how": how}

    for name, key, how in (("ceiling", "selection", "the synthetic editor's selection without its noise"),
                           ("ceiling_at_length", "selection_at_length",
                            "the same noiseless editor asked for the edit's true length, as every row above is")):
        ceiling = read_selection_ceiling(raw_dir, key) if raw_dir is not None else None
        if ceiling is not None and all(v.video_id in ceiling for v in test):
            best = selection.SelectionScore()
            for v in test:
                best.add(selection.flags(np.asarray(ceiling[v.video_id], np.int64).reshape(-1, 2), len(v.kept)),
                         v.kept, v.fps, v.video_id)
            rows[name] = {**_row(best), "how": how}
        elif ceiling is not None:
            log.warning("%s: no %s for some test videos; no %s row", schema.CEILING_FILE, key, name)
    return rows, ratio_rows


def run_select(normalized_dir: str | Path, aligned_dir: str | Path, params: Params, model_path: str | Path,
               metrics_path: str | Path, facts_path: str | Path | None = None, kind: str = "multimodal",
               split: str = "test", counts_path: str | Path | None = None) -> dict[str, Any]:
    """The `select` stage: train the selection model, score it and the references on `split`; `counts_path`
    (if given) gets each video's kept-frame counts per row at the true length (``trackfusion.intervals``)."""
    started = time.perf_counter()
    decoding = params_decoding(params)
    recordings = read_recordings(normalized_dir, content_control=params.content_control, seed=params.seed)
    fps = Corpus(normalized_dir).fps
    model, info = train_selection(recordings, params, Corpus(normalized_dir).fps, decoding)
    trained = time.perf_counter()
    test = [r for r in recordings if r.split == split]
    if not test:
        raise ValueError(f"{normalized_dir}: split '{split}' has no videos to score the selection on")
    by_length, by_ratio = selection.SelectionScore(), selection.SelectionScore()
    frames = 0
    for r in test:
        scores = keep_scores(model, r)
        frames += len(r)
        by_length.add(selection.decode_to_length(scores, fps, decoding, int(r.kept.sum())), r.kept, fps, r.video_id)
        by_ratio.add(selection.decode_to_length(scores, fps, decoding, int(round(params.select.target_ratio * len(r)))),
                     r.kept, fps)
    inferred = time.perf_counter()
    rows, ratio_rows = references(aligned_dir, params.data.raw_dir, decoding, params.select.target_ratio, split)
    counts = {kind: by_length.per_video, **pop_video_counts(rows)}
    pop_video_counts(ratio_rows)  # at the default ratio: figures only
    table = {kind: by_length.to_dict(), **rows}
    figures = {
        "split": split,
        "videos": len(test),
        "frames": frames,
        "target": "each video's true edit length",
        "selection": table,
        "at_default_ratio": {"target_ratio": params.select.target_ratio, kind: by_ratio.to_dict(), **ratio_rows},
        "train": {"members": len(info["members"]), "epochs": params.select.epochs, "ema": params.select.ema,
                  "best_epochs": info["best_epochs"], "best_val_kept_f1": info["best_val_kept_f1"],
                  "content_control": params.content_control, "use_audio": params.use_audio,
                  "use_visual": params.use_visual},
    }
    save_selection(model_path, model, extra={"decoding": decoding.to_dict(), "fps": fps,
                                             "target_ratio": params.select.target_ratio, "kind": kind})
    if counts_path is not None:
        write_counts(counts_path, {"selection": counts})
    write_figures(metrics_path, figures)
    if facts_path is not None:
        write_facts(facts_path, {"wall_time_s": round(time.perf_counter() - started, 3),
                                 "train_time_s": round(trained - started, 3),
                                 "inference_frames_per_s": round(frames / max(inferred - trained, 1e-9), 1)})
    log.info("selection on %d %s videos: kept F1 %s %.3f; %s", len(test), split, kind, table[kind]["kept_f1"],
             ", ".join(f"{k} {r['kept_f1']:.3f}" for k, r in rows.items()))
    return figures
