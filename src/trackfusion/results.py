"""Figures apart from run facts, so that `dvc metrics diff` shows only what really changed.

A *figure* is a result of the experiment (an F1, a loss, a count): it goes to a DVC
metrics file, rounded to :data:`FIGURE_DIGITS` significant digits, the precision that
reproduces across machines (two CPUs running the same pinned code agree to about 7
digits; the 8th is float noise). A *run fact* is about this run on this machine (wall
time, frames/s, peak memory, the device): it goes to a run-facts file under
:data:`RUN_FACTS_DIR`, which git ignores and DVC neither tracks nor hashes, so timings
never dirty `dvc.lock` or fill `dvc exp show` with columns.
"""
from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from trackfusion.atomic import write_json

FIGURE_DIGITS = 6
RUN_FACTS_DIR = Path("runs")  # beside dvc.yaml; in .gitignore

# Pinned CPU numerics, set by every stage before torch loads: the widest instruction set
# every x86-64 machine of the fleet has, for ATen's kernels, MKL (its conditional
# numerical reproducibility) and oneDNN alike, and the intra-op thread count (a reduction
# split over another number of threads adds in another order). Without them a CPU with
# AVX-512 trains weights that differ in the last bits from one without (measured: a
# 2-epoch default training hashed differently, and identically once pinned, on a machine
# with AVX-512 and under MKL_ENABLE_INSTRUCTIONS=AVX2 as an older one), and every model
# file, curve and predicted edit downstream changes its hash.
PINNED_NUMERICS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                   "OMP_NUM_THREADS": "2"}


def pin_numerics() -> None:
    """Set :data:`PINNED_NUMERICS` unless the user set them (before torch is imported)."""
    for name, value in PINNED_NUMERICS.items():
        os.environ.setdefault(name, value)


def round_figure(x: float, digits: int = FIGURE_DIGITS) -> float:
    """`x` at `digits` significant digits (NaN and infinities as they are)."""
    if not math.isfinite(x) or x == 0:
        return x
    return float(f"{x:.{digits}g}")


def round_figures(obj: Any, digits: int = FIGURE_DIGITS) -> Any:
    """Every float inside nested dicts, lists and tuples rounded; everything else as it is."""
    if isinstance(obj, int):  # bools too
        return obj
    if isinstance(obj, float):
        return round_figure(obj, digits)
    if isinstance(obj, dict):
        return {k: round_figures(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_figures(v, digits) for v in obj]
    if hasattr(obj, "item") and hasattr(obj, "dtype"):  # a numpy scalar
        return round_figures(obj.item(), digits)
    return obj


def write_figures(path: str | Path, figures: dict[str, Any]) -> None:
    """A DVC metrics file: the figures rounded, written whole or not at all."""
    write_json(path, round_figures(figures))


def run_facts_path(name: str, root: str | Path = ".") -> Path:
    return Path(root) / RUN_FACTS_DIR / f"{name}.json"


def write_run_facts(name: str, facts: dict[str, Any], root: str | Path = ".") -> Path:
    """This run's facts on this machine (`runs/<name>.json`), for the write-up, never a metric."""
    return write_facts(run_facts_path(name, root), facts)


def write_facts(path: str | Path, facts: dict[str, Any]) -> Path:
    """Run facts to `path` (its folder made if need be), written whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, facts)
    return path


def peak_rss_mb() -> float:
    """This process' peak resident memory so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


class RunFacts(dict):
    """Times a stage's work and writes its facts to ``runs/<name>.json`` when it ends well::

        with RunFacts("align") as facts:
            summary = align_corpus(...)
            facts["frames"] = summary["frames"]   # frames_per_s follows
    """

    def __init__(self, name: str, root: str | Path = "."):
        super().__init__()
        self.name, self.root = name, root

    def __enter__(self) -> "RunFacts":
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            return  # a failed run has no facts worth keeping; the previous file stays as it was
        wall = time.perf_counter() - self._started
        self.setdefault("wall_time_s", round(wall, 3))
        if "frames" in self and "frames_per_s" not in self:
            self["frames_per_s"] = round(self["frames"] / wall, 1) if wall > 0 else 0.0
        self.setdefault("peak_memory_mb", round(peak_rss_mb(), 1))
        write_run_facts(self.name, dict(self), self.root)


def read_run_facts(root: str | Path = ".") -> dict[str, dict[str, Any]]:
    """Every stage's last run facts on this machine, by name; {} before the first run."""
    folder = Path(root) / RUN_FACTS_DIR
    if not folder.is_dir():
        return {}
    facts = {}
    for path in sorted(folder.glob("*.json")):
        try:
            facts[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a file from an older run that cannot be read is not worth failing the write-up for
    return facts
