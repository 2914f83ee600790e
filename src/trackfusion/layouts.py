"""The layout score: what an edit shows, frame by frame, against the editor's (issue 23).

``cuts`` scores *when* the layout changes; this module scores *what* it is. Every
predictor of the layout (both models rolled out, the layout references, the noiseless
editor's own timeline) is scored by ``LayoutScore`` on the same frames: each video's
edit (its kept frames in order) in the files' units (percent, pixels), its first frame
left out because every predictor is given it.

- ``layout_accuracy``: frames whose whole layout (every track's active flag and, where
  active, its asset: ``cuts.layout``) is the truth's;
- ``per_track``: the same per track (the share of frames where that track's layout key
  is the truth's), one figure per track;
- ``active_f1`` (precision, recall): the active flags over every track-frame;
- ``asset_accuracy``: the asset, over track-frames that both show;
- ``scale_mae``, ``position_mae``, ``crop_mae``: absolute error of the placement (x and
  y, the four crops pooled) over track-frames that both show: how far a clip the
  prediction shows is from where the editor put it.
- ``per_track_switch_f1``: for each track, its switches (frames where its layout key
  differs from the frame before) matched one-to-one with the truth's within
  ``cuts.TOLERANCE`` frames (``cuts.match_events``). A toggle such as the face cam is
  wrong from a missed or extra switch until the next one, so its agreement swings with
  where the errors fall; its switch F1 counts the errors themselves.

An accuracy, F1 or MAE over nothing is None, never a perfect score.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from trackfusion import cuts, schema
from trackfusion.cuts import f1_score

#: the placement parameters scored, each a group of track parameters pooled into one MAE
PLACEMENT: dict[str, tuple[str, ...]] = {"scale": ("scale",), "position": ("x", "y"), "crop": schema.CROPS}
#: the figures a table shows beside the per-track agreement, in reading order
FIGURES: tuple[str, ...] = ("layout_accuracy", "active_f1", "asset_accuracy", "scale_mae", "position_mae", "crop_mae")


def _params(frames: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """(T, N, len(names)) of (T, N*9) frames."""
    return np.stack([frames[:, schema.track_columns(n, frames.shape[-1])] for n in names], axis=-1)


class LayoutScore:
    """Pooled over videos: ``add`` one video's predicted and true (T, N*9) frames, read ``figures``."""

    def __init__(self, num_tracks: int = schema.NUM_TRACKS):
        self.frames = self.videos = self.same = 0
        self.per_video: dict[str, dict[str, int]] = {}  # video id -> its frames of the truth's layout, frames scored
        self.track_same = np.zeros(num_tracks, np.int64)  # frames where each track's layout key is the truth's
        self.switches = np.zeros((num_tracks, 3), np.int64)  # per track: matched, extra, missed switches
        self.counts: dict[str, float] = dict.fromkeys(
            ["tp", "fp", "fn", "asset_ok", "both", *(f"{p}_{k}" for p in PLACEMENT for k in ("err", "n"))], 0.0)

    def add(self, pred: np.ndarray, true: np.ndarray, given: int = 1, video_id: str | None = None) -> None:
        """One video's frames in the same units; its first `given` frames are not scored. With `video_id`,
        its layout-accuracy counts are kept apart too (``trackfusion.intervals``)."""
        pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
        if pred.shape != true.shape:
            raise ValueError(f"predicted frames {pred.shape} and true frames {true.shape} differ in shape")
        whole_t = cuts.layout(true)  # (T, N), the given frames too: a switch right after them counts
        whole_p = np.concatenate([whole_t[:given], cuts.layout(pred[given:])])  # what follows what it was given
        first = max(int(given), 1)
        for n in range(whole_t.shape[1]):
            at = [first + np.flatnonzero(k[first:, n] != k[first - 1 : -1, n]) for k in (whole_p, whole_t)]
            self.switches[n] += cuts.match_events(*at)
        pred, true = pred[given:], true[given:]
        self.videos += 1
        key_p, key_t = whole_p[given:], whole_t[given:]  # (T, N)
        agree = key_p == key_t
        same = int(agree.all(-1).sum())
        if video_id is not None:
            self.per_video[video_id] = {"same": same, "frames": len(true)}
        if len(true) == 0:
            return
        self.frames += len(true)
        self.same += same
        self.track_same += agree.sum(0)
        on_p, on_t = key_p >= 0, key_t >= 0
        c = self.counts
        c["tp"] += int((on_p & on_t).sum())
        c["fp"] += int((on_p & ~on_t).sum())
        c["fn"] += int((~on_p & on_t).sum())
        both = on_p & on_t
        c["both"] += int(both.sum())
        c["asset_ok"] += int((both & (key_p == key_t)).sum())
        for name, cols in PLACEMENT.items():
            err = np.abs(_params(pred, cols) - _params(true, cols))  # (T, N, P)
            c[f"{name}_err"] += float(err[both].sum())
            c[f"{name}_n"] += int(both.sum()) * len(cols)

    def figures(self) -> dict[str, Any]:
        c = self.counts
        tp, fp, fn = c["tp"], c["fp"], c["fn"]

        def ratio(a: float, b: float) -> float | None:
            return a / b if b else None

        return {
            "layout_accuracy": ratio(self.same, self.frames),
            "per_track": [ratio(float(s), self.frames) for s in self.track_same],
            "per_track_switch_f1": [f1_score(*map(float, k)) if k.any() else None for k in self.switches],
            "active_f1": f1_score(tp, fp, fn) if self.frames else None,
            "active_precision": ratio(tp, tp + fp),
            "active_recall": ratio(tp, tp + fn),
            "asset_accuracy": ratio(c["asset_ok"], c["both"]),
            **{f"{name}_mae": ratio(c[f"{name}_err"], c[f"{name}_n"]) for name in PLACEMENT},
            "frames": int(self.frames),
            "videos": int(self.videos),
        }


def score_layouts(pairs: Any, given: int = 1) -> dict[str, Any]:
    """``LayoutScore`` figures of (predicted, true) frames per video."""
    score = LayoutScore()
    for pred, true in pairs:
        score.add(pred, true, given)
    return score.figures()
