"""Reference predictors of *what* the edit shows, scored as the models' roll-outs are (issue 23).

Each turns a test video's content into a whole timeline over the edit's kept frames,
given only the edit's first frame (as a roll-out is), and is scored by
``trackfusion.layouts.LayoutScore`` against the editor's:

- ``hold``: the opening layout held to the end.
- ``train_median``: the opening layout held, every active track placed at the train+val
  median of its parameters (the parameter reference beside ``hold``'s first-frame values).
- ``layout_rule``: a rule over the raw features a user could write, on the tracks of the
  contract's layout (``schema.TRACK_ASSETS``): the main footage shows the source whose
  mean CLIP look on train+val is nearest the frame's; the face cam toggles on each
  speaker turn; the text track is on while ``text_is_active``; the image insert is on
  while ``visual_motion`` is at least a threshold; every other track is off. Each change
  lands ``lag`` frames after the content shows it; the lag and the threshold are chosen
  on train+val, placements are the first frame's where the track shows there, else the
  train+val median. Where a feature is unavailable the track holds its state.
- ``layout_ceiling`` (synthetic corpus only): the editor's noiseless timeline over the
  same kept frames (``schema.CEILING_LAYOUT_FILE``): every content event followed with
  exactly its base lag, no stickers. A user's corpus has no such file and no row.

They read the *aligned* corpus: features and tracks in the files' units.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from trackfusion import schema
from trackfusion.data.corpus import Corpus, VideoEntry
from trackfusion.experiment.references import TUNE_SPLITS, Video, best_on_grid
from trackfusion.intervals import PER_VIDEO
from trackfusion.layouts import LayoutScore

log = logging.getLogger(__name__)

TRACK_MAIN, TRACK_FACE, TRACK_TEXT, TRACK_IMAGE = 0, 1, 2, 3  # the contract's layout (schema.TRACK_ASSETS)
LAGS = (0, 1, 2, 3)
MOTION_THRESHOLDS = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)
_P = schema.NUM_TRACK_PARAMS
_ACTIVE, _ASSET = schema.param_index("active"), schema.param_index("asset_id")


class LayoutVideo(Video):
    """One video's edit (the kept frames in order): the cut references' content signals (``Video``: text,
    speaker turns, motion, NaN where unavailable), its true timeline and its CLIP vectors."""

    def __init__(self, entry: VideoEntry, arrays: dict[str, np.ndarray]):
        super().__init__(entry, arrays)
        self.track = np.asarray(arrays["track"], np.float64)  # (T, 180), files' units
        clip = np.asarray(arrays["clip"], np.float64)
        norm = np.linalg.norm(clip, axis=1, keepdims=True)
        seen = arrays["mask"][:, 1].astype(bool) & (norm[:, 0] > 0)
        self.clip = np.where(seen[:, None], clip / np.maximum(norm, 1e-12), np.nan)  # unit vectors, NaN unseen

    def __len__(self) -> int:
        return len(self.track)


def load_layout_videos(corpus: Corpus, splits: Iterable[str]) -> list[LayoutVideo]:
    return [LayoutVideo(v, corpus.edit_arrays(v.video_id)) for s in splits for v in corpus.split_videos(s)
            if v.edit_length > 0]


class RuleFit:
    """What the rule learns from train+val: each main source's mean CLIP look, and each track's median placement."""

    def __init__(self, videos: list[LayoutVideo]):
        sources = schema.TRACK_ASSETS[TRACK_MAIN]
        sums = np.zeros((len(sources), schema.CLIP_DIM))
        for v in videos:
            on = v.track[:, TRACK_MAIN * _P + _ACTIVE] > 0.5
            asset = np.rint(v.track[:, TRACK_MAIN * _P + _ASSET])
            for i, a in enumerate(sources):
                rows = on & (asset == a) & np.isfinite(v.clip[:, 0])
                sums[i] += v.clip[rows].sum(0)
        norm = np.linalg.norm(sums, axis=1)
        self.sources = np.asarray(sources)[norm > 0]  # sources seen on train+val
        self.looks = sums[norm > 0] / norm[norm > 0, None]  # (S, 512) unit vectors
        frames = np.concatenate([v.track for v in videos]) if videos else np.zeros((0, schema.TRACK_WIDTH))
        by_track = frames.reshape(len(frames), -1, _P)
        self._sources: dict[str, np.ndarray] = {}  # per video: the rule's grid search reads them 32 times
        self.medians = np.zeros((by_track.shape[1], _P))
        for t in range(by_track.shape[1]):
            on = by_track[:, t, _ACTIVE] > 0.5
            if on.any():
                self.medians[t] = np.median(by_track[on, t], axis=0)

    def main_source(self, video: LayoutVideo) -> np.ndarray:
        """(T,) the main source whose look is nearest each frame's CLIP; -1 where CLIP is unavailable."""
        if video.video_id not in self._sources:
            if not len(self.sources):
                nearest = np.full(len(video), -1)
            else:
                nearest = self.sources[np.argmax(np.nan_to_num(video.clip) @ self.looks.T, axis=1)]
            self._sources[video.video_id] = np.where(np.isfinite(video.clip[:, 0]), nearest, -1)
        return self._sources[video.video_id]


def _delayed(x: np.ndarray, lag: int, fill: Any) -> np.ndarray:
    """x shifted `lag` frames later (what the content showed `lag` frames ago)."""
    if lag <= 0:
        return x.copy()
    return np.concatenate([np.full(min(lag, len(x)), fill, dtype=x.dtype), x[:-lag]])


def _held(values: np.ndarray, known: np.ndarray, first: Any) -> np.ndarray:
    """values where known, else the last known value (`first` before any)."""
    idx = np.where(known, np.arange(len(values)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = values[idx]
    out[~known & (np.cumsum(known) == 0)] = first
    return out


def held_frames(video: LayoutVideo, placement: np.ndarray | None = None) -> np.ndarray:
    """The first frame's layout to the end, each active track at its first-frame placement or `placement` (N, 9)."""
    frames = np.repeat(video.track[:1], len(video), axis=0).reshape(len(video), -1, _P)
    if placement is not None:
        on = frames[0, :, _ACTIVE] > 0.5
        frames[:, on, _ASSET + 1 :] = placement[on, _ASSET + 1 :]
    return frames.reshape(len(video), -1)


def rule_frames(video: LayoutVideo, fit: RuleFit, lag: int, motion: float) -> np.ndarray:
    """The layout rule's timeline (T, 180) of one video, its first frame the truth's."""
    T = len(video)
    first = video.track[0].reshape(-1, _P)
    frames = np.zeros((T, first.shape[0], _P))
    on = np.zeros((T, first.shape[0]), bool)
    asset = np.zeros((T, first.shape[0]))
    was_on = first[:, _ACTIVE] > 0.5

    main = _delayed(fit.main_source(video), lag, -1)
    asset[:, TRACK_MAIN] = _held(main.astype(np.float64), main >= 0, np.rint(first[TRACK_MAIN, _ASSET]))
    on[:, TRACK_MAIN] = True
    turns = _delayed(video.turn, lag, False)
    turns[0] = False
    on[:, TRACK_FACE] = (np.cumsum(turns) + was_on[TRACK_FACE]) % 2 == 1
    for track, signal, threshold in ((TRACK_TEXT, video.text, 0.5), (TRACK_IMAGE, video.motion, motion)):
        known = _delayed(np.isfinite(signal), lag, False)
        on[:, track] = _held(_delayed(signal >= threshold, lag, False), known, was_on[track])
    for track in (TRACK_FACE, TRACK_TEXT, TRACK_IMAGE):
        asset[:, track] = schema.TRACK_ASSETS[track][0]
    placement = np.where(was_on[:, None], first, fit.medians)  # (N, 9)
    frames[:] = placement
    frames[..., _ACTIVE] = on
    frames[..., _ASSET] = asset
    frames *= on[..., None]
    frames[0] = first  # given, as a roll-out is
    return frames.reshape(T, -1)


def score(videos: list[LayoutVideo], predict: Any) -> dict[str, Any]:
    """``LayoutScore`` figures, and each video's counts (``intervals.PER_VIDEO``) until the stage writes them apart."""
    s = LayoutScore()
    for v in videos:
        s.add(predict(v), v.track, video_id=v.video_id)
    return {**s.figures(), PER_VIDEO: s.per_video}


def read_layout_ceiling(raw_dir: str | Path) -> dict[str, np.ndarray] | None:
    path = Path(raw_dir) / schema.CEILING_LAYOUT_FILE
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {vid: np.asarray(data[vid], np.float64) for vid in data.files}


def with_layout_rule(examples: list[tuple[np.ndarray, dict[str, np.ndarray], float, str]], corpus: Corpus,
                     references: dict[str, Any]) -> list[tuple[np.ndarray, dict[str, np.ndarray], float, str]]:
    """The predict stage's example videos with the layout rule's timeline beside the roll-outs, at the knobs the
    references stage chose (``references``: metrics/references.json); unchanged where it chose none."""
    rule = references.get("layout", {}).get("layout_rule")
    if not rule or not examples:
        return examples
    fit = RuleFit(load_layout_videos(corpus, TUNE_SPLITS))
    out = []
    for truth, preds, fps, vid in examples:
        ruled = rule_frames(LayoutVideo(corpus.video(vid), corpus.edit_arrays(vid)), fit, rule["lag"], rule["motion"])
        out.append((truth, {"layout rule": ruled, **preds}, fps, vid))
    return out


def run_layout_references(corpus: Corpus, raw_dir: str | Path | None = None, split: str = "test") -> dict[str, Any]:
    """Every layout reference scored on `split` by ``LayoutScore``; the rule's knobs from train+val only."""
    test = load_layout_videos(corpus, [split])
    tuning = load_layout_videos(corpus, TUNE_SPLITS)
    fit = RuleFit(tuning)
    rows: dict[str, dict[str, Any]] = {}
    rows["hold"] = {**score(test, held_frames), "how": "the opening layout held to the end"}
    rows["train_median"] = {**score(test, lambda v: held_frames(v, fit.medians)),
                            "how": "the opening layout held, each active track at the train+val median placement"}
    best, tuned = best_on_grid({"lag": LAGS, "motion": MOTION_THRESHOLDS},
                               lambda **k: score(tuning, lambda v: rule_frames(v, fit, **k))["layout_accuracy"] or 0.0)
    rows["layout_rule"] = {
        **score(test, lambda v: rule_frames(v, fit, **best)), **best, "tuned_layout_accuracy": tuned,
        "how": f"main source from the nearest train+val CLIP look, face cam toggled on speaker turns, text while "
               f"text_is_active, image while visual_motion >= {best['motion']}, {best['lag']} frames later "
               "(chosen on train+val)",
    }  # fmt: skip
    ceiling = read_layout_ceiling(raw_dir) if raw_dir is not None else None
    if ceiling is not None:
        wrong = [v.video_id for v in test if v.video_id not in ceiling or ceiling[v.video_id].shape != v.track.shape]
        if wrong:
            log.warning("%s: no layout ceiling of the edit's length for %d test videos (%s); no ceiling row",
                        schema.CEILING_LAYOUT_FILE, len(wrong), wrong[0])
        else:
            rows["layout_ceiling"] = {**score(test, lambda v: ceiling[v.video_id]),
                                      "how": "the synthetic editor's timeline without its noise"}
    log.info("layout references on %d %s videos: %s", len(test), split,
             ", ".join(f"{k} {r['layout_accuracy']:.3f}" for k, r in rows.items()
                       if r.get("layout_accuracy") is not None))  # fmt: skip
    return rows
