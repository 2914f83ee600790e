"""The faults injected into the feature files (SPEC section 7), so that every reader's repair
is exercised by the default corpus.

A corpus-wide plan (``plan_faults``, listed in the summary) gives one video no visual
file (3+ videos) and another no audio file (4+ videos); with 6+ videos also gaps of
1-10 s, late starts and early ends (3-15 s), irregular sample times (large jitter,
dropped samples), rows out of time order, a duplicated time row and a few empty or
``inf`` values, each in a few videos. Each row fault hits one of the video's files.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from trackfusion import schema

FAULT_KINDS = (
    "no_visual_file",
    "no_audio_file",
    "gap",
    "late_start",
    "early_end",
    "irregular_times",
    "unsorted_rows",
    "duplicate_time",
    "nonfinite_values",
)
#: fraction of videos given each fault once there are 6+ videos (at least one each)
FAULT_RATES = {
    "gap": 0.08,
    "late_start": 0.05,
    "early_end": 0.05,
    "irregular_times": 0.15,
    "unsorted_rows": 0.05,
    "duplicate_time": 0.05,
    "nonfinite_values": 0.05,
}


def plan_faults(seed: int, num_videos: int) -> dict[int, list[str]]:
    """Fault kinds per video index, a deterministic corpus-wide plan (modest rates)."""
    rng = np.random.default_rng([seed, 0xFA17])
    plan: dict[int, list[str]] = {i: [] for i in range(num_videos)}
    order = rng.permutation(num_videos)
    if num_videos >= 3:
        plan[int(order[0])].append("no_visual_file")
    if num_videos >= 4:
        plan[int(order[1])].append("no_audio_file")
    if num_videos >= 6:
        for kind, rate in FAULT_RATES.items():  # spread: videos with the fewest faults first, ties at random
            tie = rng.random(num_videos)
            chosen = sorted(range(num_videos), key=lambda i: (len(plan[i]), tie[i]))
            for i in chosen[: max(1, round(rate * num_videos))]:
                plan[i].append(kind)
    return plan


@dataclass(frozen=True)
class FileFaults:
    """One video's faults file by file."""

    missing: tuple[str, ...]  # modalities without a file
    rows: dict[str, tuple[str, ...]]  # each written file's modality -> its row faults


def assign_faults(faults: list[str], frng: np.random.Generator) -> FileFaults:
    """Which file each of a video's faults hits: the only one written, else either at random."""
    missing = tuple(f.split("_")[1] for f in faults if f.startswith("no_"))  # "no_audio_file" -> "audio"
    present = [m for m in schema.FEATURE_MODALITIES if m not in missing]
    target = {
        f: present[0] if len(present) == 1 else present[int(frng.integers(0, 2))]
        for f in faults
        if not f.startswith("no_")
    }
    return FileFaults(missing, {m: tuple(f for f, t in target.items() if t == m) for m in present})


@dataclass(frozen=True)
class RowPlan:
    """Which rows of a clean table a faulty file keeps, in which order, and which cells break."""

    keep: np.ndarray  # (N,) bool
    order: np.ndarray  # row indices (into the kept rows) in file order
    bad_cells: tuple[tuple[int, str, float], ...] = ()  # (kept row, column, NaN or inf)

    def apply(self, values: dict[str, Any]) -> dict[str, Any]:
        """The table's columns as the faulty file holds them."""
        out = {}
        for name, v in values.items():
            v = np.asarray(v)[self.keep]
            if v.dtype.kind == "f":
                v = v.copy()
                for row, col, bad in self.bad_cells:
                    if col == name:
                        v[row] = bad
            out[name] = v[self.order]
        return out


def plan_rows(
    t: np.ndarray,
    faults: tuple[str, ...],
    frng: np.random.Generator,
    start: float,
    end: float,
    columns: tuple[str, ...],
) -> tuple[RowPlan, list[dict[str, Any]]]:
    """The row faults of one table with sample times ``t`` over the edit ``[start, end]``, and
    their details for the summary; ``columns`` are the float columns a bad cell may hit."""
    keep = np.ones(len(t), bool)
    details: list[dict[str, Any]] = []
    span = end - start
    if "late_start" in faults:
        d = float(min(frng.uniform(3, 15), 0.3 * span))
        keep &= t >= start + d
        details.append({"kind": "late_start", "first_time_s": round(start + d, 3)})
    if "early_end" in faults:
        d = float(min(frng.uniform(3, 15), 0.3 * span))
        keep &= t <= end - d
        details.append({"kind": "early_end", "last_time_s": round(end - d, 3)})
    if "gap" in faults:
        for _ in range(int(frng.integers(1, 3))):
            length = float(min(frng.uniform(1.0, 10.0), max(0.15 * span, 1.2)))
            g0 = float(frng.uniform(start + 0.2 * span, start + 0.7 * span))
            keep &= ~((t >= g0) & (t < g0 + length))
            details.append({"kind": "gap", "from_s": round(g0, 3), "to_s": round(g0 + length, 3)})
    if "irregular_times" in faults:
        keep &= frng.random(len(t)) >= 0.03  # dropped samples on top of the large jitter
        details.append({"kind": "irregular_times"})
    n = int(keep.sum())
    order = np.arange(n)
    if "unsorted_rows" in faults and n > 20:
        rows = frng.choice(np.arange(5, n - 5, 3), size=min(3, (n - 10) // 3), replace=False)
        order[rows], order[rows + 1] = order[rows + 1], order[rows].copy()
        details.append({"kind": "unsorted_rows", "rows": sorted(int(r) for r in rows)})
    if "duplicate_time" in faults and n > 2:
        r = int(frng.integers(1, n - 1))
        order = np.insert(order, int(np.flatnonzero(order == r)[0]) + 1, r)
        details.append({"kind": "duplicate_time", "time_s": round(float(t[keep][r]), 4)})
    bad: list[tuple[int, str, float]] = []
    if "nonfinite_values" in faults and n > 0:
        for _ in range(int(frng.integers(2, 5))):
            row, col = int(frng.integers(0, n)), columns[int(frng.integers(0, len(columns)))]
            bad.append((row, col, np.inf if frng.random() < 0.5 else np.nan))
        cells = [{"row": r, "column": col, "value": str(v)} for r, col, v in bad]  # row: sample index before reordering
        details.append({"kind": "nonfinite_values", "cells": cells})
    return RowPlan(keep, order, tuple(bad)), details
