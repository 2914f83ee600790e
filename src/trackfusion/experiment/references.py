"""Reference predictors: what a model's cut F1 must be read against (SPEC 6).

Each reference turns a video into cut events and is scored by the same
``cuts.CutScore`` on the same test videos as the models:

- ``never``: no cut at all (F1 0).
- ``random``: a cut on each frame with the train split's cut rate; the mean (and sd)
  over ``RANDOM_DRAWS`` seeded draws. Under +-5-frame matching at about one cut per
  40 frames this is about 0.23, not 0: chance is what a tolerance window gives away.
- ``periodic``: a cut every P frames, no content, P chosen on train+val.
- ``content_rule``: a cut ``lag`` frames after the scene change score rises past a
  threshold, a speaker turn, the text overlay switching on or off, or the motion
  score crossing a threshold; the two thresholds and the lag chosen on train+val only
  (open loop: it never sees a timeline).
- ``ceiling`` (synthetic corpus only): the generator's editor applied to its hidden
  content events without its noise (``schema.CEILING_FILE``), the best any
  content-based predictor can expect; a user's own corpus has no such file and no row.

Cuts are the edit's: each video's kept frames in order (``Corpus.edit_arrays``). They
read the *aligned* corpus (features in their original units) so the rule's
thresholds are the numbers a user sees in the feature files. Each row also carries its
per-video counts (``intervals.PER_VIDEO``), which the stage writes apart from the figures.
"""
from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from trackfusion import cuts, schema
from trackfusion.data.corpus import Corpus, VideoEntry
from trackfusion.intervals import PER_VIDEO, mean_counts

log = logging.getLogger(__name__)

RANDOM_DRAWS = 10
PERIODS = tuple(range(2, 61))
SCENE_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
MOTION_THRESHOLDS = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)
LAGS = (0, 1, 2, 3)
TUNE_SPLITS = ("train", "val")

_AUDIO = [c.name for c in schema.AUDIO_INPUTS]
_VISUAL = [c.name for c in schema.VISUAL_SCALARS]


class Video:
    """One video's true cut events and the raw content signals the rule reads."""

    def __init__(self, entry: VideoEntry, arrays: dict[str, np.ndarray]):
        self.video_id = entry.video_id
        self.length = entry.edit_length  # the edit's frames: cuts are scored over the kept frames in order
        self.true = cuts.video_cut_events(np.asarray(arrays["track"], np.float32))
        audio_ok, visual_ok = arrays["mask"][:, 0].astype(bool), arrays["mask"][:, 1].astype(bool)
        audio = np.where(audio_ok[:, None], arrays["audio"], np.nan)
        visual = np.where(visual_ok[:, None], arrays["visual"], np.nan)
        self.scene = visual[:, _VISUAL.index("scene_change")]
        self.motion = visual[:, _VISUAL.index("visual_motion")]
        self.turn = audio[:, _AUDIO.index("speaker_turn")] > 0.5
        self.text = audio[:, _AUDIO.index("text_is_active")]


def load_videos(corpus: Corpus, splits: Iterable[str]) -> list[Video]:
    return [Video(v, corpus.edit_arrays(v.video_id)) for s in splits for v in corpus.split_videos(s)
            if v.edit_length > 0]


def _rises(x: np.ndarray, threshold: float) -> np.ndarray:
    """(T,) True where x reaches the threshold from below (NaN, unavailable, never counts)."""
    on = np.nan_to_num(x, nan=-np.inf) >= threshold
    out = np.zeros_like(on)
    out[1:] = on[1:] & ~on[:-1] & np.isfinite(x[:-1])
    return out


def _toggles(x: np.ndarray, threshold: float) -> np.ndarray:
    """(T,) True where x crosses the threshold in either direction between available frames."""
    out = np.zeros(len(x), bool)
    ok = np.isfinite(x[1:]) & np.isfinite(x[:-1])
    out[1:] = ok & ((x[1:] >= threshold) != (x[:-1] >= threshold))
    return out


def content_rule_events(video: Video, scene: float, motion: float, lag: int) -> np.ndarray:
    flags = _rises(video.scene, scene) | video.turn | _toggles(video.text, 0.5) | _toggles(video.motion, motion)
    flags[0] = False  # a video's first frame has no previous frame to cut from
    events = cuts.cut_events(flags) + lag
    return events[events < video.length]


def periodic_events(video: Video, period: int) -> np.ndarray:
    return np.arange(period, video.length, period, dtype=np.int64)


def random_events(video: Video, rate: float, rng: np.random.Generator) -> np.ndarray:
    flags = rng.random(video.length) < rate
    flags[0] = False
    return cuts.cut_events(flags)


def score(videos: list[Video], predict: Callable[[Video], np.ndarray], tolerance: int = cuts.TOLERANCE) -> cuts.CutScore:
    s = cuts.CutScore(tolerance)
    for v in videos:
        s.add(predict(v), v.true, v.length, v.video_id)
    return s


def _row(s: cuts.CutScore) -> dict[str, Any]:
    """A reference row: the figures, and each video's counts until the stage writes them apart."""
    return {**s.figures(), PER_VIDEO: s.per_video}


def best_on_grid(grid: dict[str, Iterable[Any]], evaluate: Callable[..., float]) -> tuple[dict[str, Any], float]:
    """The grid point with the highest ``evaluate(**knobs)`` and that figure (ties: the first in grid order)."""
    best: dict[str, Any] = {}
    best_value = -1.0
    names = list(grid)
    for values in itertools.product(*grid.values()):
        knobs = dict(zip(names, values))
        value = evaluate(**knobs)
        if value > best_value:
            best, best_value = knobs, value
    return best, best_value


def tune(videos: list[Video], grid: dict[str, Iterable[Any]], predict: Callable[..., np.ndarray]) -> dict[str, Any]:
    """The grid point with the best pooled cut F1 on `videos`."""
    best, f1 = best_on_grid(grid, lambda **knobs: score(videos, lambda v: predict(v, **knobs)).f1)
    return {**best, "tuned_f1": f1}


def read_ceiling(raw_dir: str | Path) -> dict[str, np.ndarray] | None:
    path = Path(raw_dir) / schema.CEILING_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return {vid: np.asarray(frames, np.int64) for vid, frames in data.get("videos", {}).items()}


def run_references(
    corpus_dir: str | Path, raw_dir: str | Path | None = None, split: str = "test", tolerance: int = cuts.TOLERANCE
) -> dict[str, Any]:
    """Every reference predictor scored on `split`; tuned knobs come from train+val only."""
    corpus = Corpus(corpus_dir)
    test = load_videos(corpus, [split])
    tuning = load_videos(corpus, TUNE_SPLITS)
    train = load_videos(corpus, ["train"])
    frames = sum(max(v.length - 1, 0) for v in train)
    rate = sum(len(v.true) for v in train) / frames if frames else 0.0

    rows: dict[str, dict[str, Any]] = {}
    rows["never"] = {**_row(score(test, lambda v: np.zeros(0, np.int64), tolerance)), "how": "no cut at all"}
    scores = [score(test, lambda v, r=np.random.default_rng([i, 7]): random_events(v, rate, r), tolerance)
              for i in range(RANDOM_DRAWS)]  # fmt: skip
    draws = [s.figures() for s in scores]
    rows["random"] = {k: float(np.mean([d[k] for d in draws])) for k in draws[0]}
    rows["random"][PER_VIDEO] = mean_counts(s.per_video for s in scores)
    rows["random"].update(cut_f1_sd=float(np.std([d["cut_f1"] for d in draws])), rate_per_frame=rate,
                          how=f"a cut on each frame with the train cut rate (1 per {1 / rate:.0f} frames), "
                              f"mean of {RANDOM_DRAWS} draws" if rate else "train split has no cuts")  # fmt: skip
    periodic = tune(tuning, {"period": PERIODS}, periodic_events)
    rows["periodic"] = {**_row(score(test, lambda v: periodic_events(v, periodic["period"]), tolerance)),
                        **periodic, "how": f"a cut every {periodic['period']} frames (period chosen on train+val)"}
    rule = tune(tuning, {"scene": SCENE_THRESHOLDS, "motion": MOTION_THRESHOLDS, "lag": LAGS}, content_rule_events)
    knobs = {k: rule[k] for k in ("scene", "motion", "lag")}
    rows["content_rule"] = {
        **_row(score(test, lambda v: content_rule_events(v, **knobs), tolerance)), **rule,
        "how": f"cut {knobs['lag']} frames after scene_change rises past {knobs['scene']}, a speaker turn, "
               f"text_is_active toggling, or visual_motion crossing {knobs['motion']} (chosen on train+val)",
    }  # fmt: skip
    ceiling = read_ceiling(raw_dir) if raw_dir is not None else None
    if ceiling is not None:
        missing = [v.video_id for v in test if v.video_id not in ceiling]
        if missing:
            log.warning("%s: no ceiling for %d test videos (%s); no ceiling row", schema.CEILING_FILE, len(missing),
                        missing[0])
        else:
            rows["ceiling"] = {**_row(score(test, lambda v: ceiling[v.video_id], tolerance)),
                               "how": "the synthetic editor on its hidden events without its noise"}  # fmt: skip
    log.info("references on %d %s videos: %s", len(test), split,
             ", ".join(f"{k} {r['cut_f1']:.3f}" for k, r in rows.items() if r.get("cut_f1") is not None))  # fmt: skip
    return {"split": split, "videos": len(test), "tolerance_frames": tolerance, "references": rows}
