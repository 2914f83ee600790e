"""How far the test videos can tell two predictors apart: per-video counts and a paired bootstrap.

Every figure of the comparison tables is pooled over the test videos, ten on the default
corpus. One missed face-cam toggle inverts the face cam until the next, so a single video
moves the pooled layout accuracy by hundredths, and "within 0.05 of the ceiling" or "at
least the rule" is a claim about ten draws. So each scoring stage (``predict``,
``references``, ``select``) writes, beside its figures, each video's counts of its table's
headline figure (``TABLES``; the scorers' ``per_video``) to a counts file, and ``compare``
draws the videos again with replacement, the same draws for every predictor of a table: a
difference is paired (a video hard for both moves both and cancels). It reports the central
``LEVEL`` interval of each figure, of the model less each reference, and the share of draws
in which the model is at least the reference.

A counts file is ``{table: {predictor: {video_id: {count: value}}}}``; a row built from
several random draws holds their mean counts.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from trackfusion.atomic import write_json

log = logging.getLogger(__name__)

#: table -> (its headline figure, the per-video counts it is pooled from)
TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "selection": ("kept_f1", ("tp", "fp", "fn")),
    "layout": ("layout_accuracy", ("same", "frames")),
    "cuts": ("cut_f1", ("tp", "fp", "fn")),
}
DRAWS = 10_000
LEVEL = 0.9
SEED = 0
PER_VIDEO = "per_video"  # the key a reference row carries its counts under until the stage writes them apart

VideoCounts = dict[str, dict[str, float]]  # video id -> count name -> value


def pooled_figure(table: str, counts: np.ndarray) -> np.ndarray:
    """The table's headline figure of summed counts (..., C) in ``TABLES`` order, as the scorers pool them:
    F1 1.0 where there was nothing to find and nothing found (``cuts.f1_score``), accuracy NaN over no frame."""
    counts = np.asarray(counts, np.float64)
    if TABLES[table][1] == ("same", "frames"):
        same, frames = counts[..., 0], counts[..., 1]
        return np.where(frames > 0, same / np.where(frames > 0, frames, 1.0), np.nan)
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1.0), 1.0)


def pop_video_counts(rows: Mapping[str, dict[str, Any]]) -> dict[str, VideoCounts]:
    """Take each row's per-video counts out of it (they are no figures), as ``{row: counts}``."""
    return {name: row.pop(PER_VIDEO) for name, row in rows.items() if isinstance(row, dict) and PER_VIDEO in row}


def mean_counts(draws: Iterable[VideoCounts]) -> VideoCounts:
    """Per video, the mean of several draws' counts (a random reference's row)."""
    draws = list(draws)
    if not draws:
        return {}
    return {vid: {k: float(np.mean([d[vid][k] for d in draws])) for k in draws[0][vid]} for vid in draws[0]}


def write_counts(path: str | Path, tables: Mapping[str, Mapping[str, VideoCounts]]) -> None:
    """Write a stage's per-video counts (``{table: {predictor: counts}}``) atomically."""
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ValueError(f"unknown counts table(s) {unknown}; allowed: {', '.join(TABLES)}")
    write_json(path, {t: {row: {vid: dict(c) for vid, c in sorted(v.items())} for row, v in rows.items()}
                      for t, rows in tables.items()})


def read_counts(paths: Iterable[str | Path]) -> dict[str, dict[str, VideoCounts]]:
    """Merge the stages' counts files into ``{table: {predictor: counts}}``; a missing file is skipped."""
    merged: dict[str, dict[str, VideoCounts]] = {}
    for path in paths:
        path = Path(path)
        if not path.exists():
            log.warning("%s: no per-video counts; its rows get no interval", path)
            continue
        for table, rows in json.loads(path.read_text(encoding="utf-8")).items():
            if table in TABLES:
                merged.setdefault(table, {}).update(rows)
    return merged


def _common_videos(rows: Mapping[str, VideoCounts]) -> list[str]:
    """The videos every row scored, sorted."""
    return sorted(set.intersection(*(set(c) for c in rows.values()))) if rows else []


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.nanquantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_bootstrap(table: str, rows: Mapping[str, VideoCounts], model: str, draws: int = DRAWS,
                     level: float = LEVEL, seed: int = SEED) -> dict[str, Any]:
    """Each row's headline figure with its interval, and the model less each other row with its interval
    and P(model >= row), over the videos every row scored (the same resampled videos for all rows)."""
    names = TABLES[table][1]
    videos = _common_videos(rows)
    left_out = sorted({v for c in rows.values() for v in c} - set(videos))
    if left_out:
        log.warning("%s intervals: %d video(s) not scored by every row left out (%s)", table, len(left_out),
                    left_out[0])
    out: dict[str, Any] = {"figure": TABLES[table][0], "videos": len(videos), "draws": draws, "level": level,
                           "rows": {}, "model_less": {}}
    if not videos:
        return out
    order = list(rows)
    counts = np.array([[[rows[r][v][k] for k in names] for v in videos] for r in order], np.float64)  # (R, V, C)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(videos), size=(draws, len(videos)))
    weights = np.zeros((draws, len(videos)))  # how often each video is in each draw
    np.add.at(weights, (np.arange(draws)[:, None], picks), 1.0)
    drawn = pooled_figure(table, np.einsum("dv,rvc->rdc", weights, counts))  # (R, D)
    value = pooled_figure(table, counts.sum(axis=1))  # (R,)
    for i, r in enumerate(order):
        lo, hi = _interval(drawn[i], level)
        out["rows"][r] = {"value": float(value[i]), "low": lo, "high": hi}
    if model in rows:
        m = order.index(model)
        for i, r in enumerate(order):
            if i == m:
                continue
            diff = drawn[m] - drawn[i]
            lo, hi = _interval(diff, level)
            out["model_less"][r] = {"value": float(value[m] - value[i]), "low": lo, "high": hi,
                                    "p_at_least": float(np.mean(diff >= 0))}
    return out


def all_intervals(counts: Mapping[str, Mapping[str, VideoCounts]], model: str) -> dict[str, Any]:
    """``paired_bootstrap`` of every table the counts hold, the model row named `model`."""
    return {t: paired_bootstrap(t, counts[t], model) for t in TABLES if counts.get(t)}


def per_video_figures(table: str, rows: Mapping[str, VideoCounts]) -> dict[str, dict[str, Any]]:
    """Each video's own headline figure per row, and its weight in the pooled figure (the frames a layout
    accuracy counts, the true events or kept frames an F1 finds): where a pooled gap comes from."""
    names = TABLES[table][1]
    out: dict[str, dict[str, Any]] = {}
    for v in _common_videos(rows):
        counts = {r: np.array([rows[r][v][k] for k in names], np.float64) for r in rows}
        first = next(iter(counts.values()))
        weight = first[1] if names == ("same", "frames") else first[0] + first[2]  # frames; true tp + fn
        out[v] = {"weight": float(weight), "figures": {r: float(pooled_figure(table, c)) for r, c in counts.items()}}
    return out
