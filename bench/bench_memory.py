"""Memory benchmark: peak RSS of `align` and of one training epoch at two corpus sizes (SPEC section 10).

    .venv/bin/python bench/bench_memory.py [--quick] [--sizes 20 200] [--threads N]

Generates two synthetic corpora (``trackfusion.data.synthetic.generate_corpus``, seed 0,
30-40 s videos at 10 fps, the generator's injected faults included) of 20 and 200
videos (``--quick``: 5 and 50) in a temporary folder. For each size, three steps run,
each in its own fresh subprocess so that no measurement inherits another's heap:

- ``align``: ``preprocess.align_corpus(raw, aligned, params)`` (CSV parsing included);
- ``normalize``: ``preprocess.normalize_corpus(aligned, normalized)`` (reported, no target);
- ``train``: ``training.train_model`` of the multimodal model for one epoch on CPU
  (train epoch, val pass, the test pass of the best checkpoint, checkpoints, DVCLive).

Each subprocess reports its own peak resident set (``VmHWM`` from ``/proc/self/status``,
``ru_maxrss`` where that is missing; the number the target is on), its peak RSS right
after the imports (interpreter, numpy, pandas, torch: a constant independent of the corpus), and the peaks of the anonymous and
file-backed parts of the RSS, sampled every 10 ms from ``/proc/self/status``
(memory-mapped corpus pages that were read count as file-backed RSS; the kernel can
drop them at any time, unlike heap). Target: peak RSS at the large size <= 1.2x the small.

`run(quick) -> list[dict]` returns one row per step with both sizes and the ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIZES = (20, 200)
QUICK_SIZES = (5, 50)
DURATION_S = (30.0, 40.0)
TARGET_RATIO = 1.2
STEPS = ("align", "normalize", "train")
_MARK = "BENCH_MEMORY_RESULT "


# ----------------------------------------------------------------------------- worker side
def _maxrss_mb() -> float:
    """Peak RSS of this process image: VmHWM, which starts afresh at exec.

    ``getrusage(RUSAGE_SELF).ru_maxrss`` is not used where VmHWM exists: Linux carries it
    over from the parent through fork and exec, so a worker started by a large parent
    (run_all.py after the alignment benchmark holds ~1.7 GB) would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class _Sampler(threading.Thread):
    """Peak RssAnon / RssFile of this process, read from /proc/self/status every 10 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = {"RssAnon": 0.0, "RssFile": 0.0}
        self._halt = threading.Event()

    def sample(self) -> None:
        try:
            with open("/proc/self/status", encoding="ascii") as fh:
                for line in fh:
                    key = line.split(":", 1)[0]
                    if key in self.peak:
                        self.peak[key] = max(self.peak[key], int(line.split()[1]) / 1024)
        except OSError:  # not Linux: only ru_maxrss is reported
            pass

    def run(self) -> None:
        while not self._halt.wait(0.01):
            self.sample()

    def stop(self) -> dict[str, float]:
        self._halt.set()
        self.join()
        self.sample()
        return self.peak


def _worker(step: str, work: Path, threads: int) -> None:
    import logging

    import torch  # noqa: F401  (imported by every step's real process too: part of the constant baseline)

    from trackfusion.data import build as preprocess
    from trackfusion.params import params_from_dict
    from trackfusion.learn.recipe import train_model

    import dvclive  # noqa: F401  (train_model imports it lazily; keep it out of the measured growth)

    logging.basicConfig(level=logging.ERROR)
    logging.disable(logging.WARNING)
    if threads:
        torch.set_num_threads(threads)
    params = params_from_dict({"train": {"epochs": 1, "device": "cpu", "num_workers": 0}})
    baseline = _maxrss_mb()
    sampler = _Sampler()
    sampler.start()
    t0 = time.perf_counter()
    if step == "align":
        summary = preprocess.align_corpus(work / "raw", work / "aligned", params)
        info = {"videos": summary["videos_kept"]}
    elif step == "normalize":
        preprocess.normalize_corpus(work / "aligned", work / "normalized")
        info = {}
    elif step == "train":
        out = work / "train"
        result = train_model(
            params, work / "normalized", "multimodal",
            live_dir=out / "live", metrics_path=out / "metrics.json", model_path=out / "model.pt",
            checkpoint_dir=out / "checkpoints", resume=False, progress=False,
        )  # fmt: skip
        info = {"frames_seen": result["run"]["frames_seen"], "train_time_s": result["facts"]["train_time_s"]}
    else:
        raise SystemExit(f"unknown step {step!r}")
    seconds = time.perf_counter() - t0
    peaks = sampler.stop()
    print(_MARK + json.dumps({
        "step": step, "peak_rss_mb": _maxrss_mb(), "baseline_rss_mb": baseline,
        "peak_anon_mb": peaks["RssAnon"], "peak_file_mb": peaks["RssFile"], "seconds": seconds, **info,
    }), flush=True)  # fmt: skip


# ----------------------------------------------------------------------------- parent side
def _measure(step: str, work: Path, threads: int) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", step, "--work", str(work),
           "--threads", str(threads)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"bench_memory worker {step!r} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len(_MARK):])


def _corpus(tmp: Path, n: int) -> tuple[Path, dict[str, Any]]:
    from trackfusion.params import SyntheticParams
    from trackfusion.data.synthetic import generate_corpus

    work = tmp / f"n{n}"
    work.mkdir()
    lo, hi = DURATION_S
    summary = generate_corpus(work / "raw", SyntheticParams(seed=0, num_videos=n, min_duration_s=lo, max_duration_s=hi),
                              fps=10)  # fmt: skip
    return work, summary


def run(quick: bool = False, sizes: tuple[int, int] | None = None, threads: int = 0) -> list[dict[str, Any]]:
    small, large = sizes or (QUICK_SIZES if quick else SIZES)
    measured: dict[int, dict[str, dict[str, Any]]] = {}
    frames: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix="trackfusion-bench-memory-") as tmp:
        for n in (small, large):
            work, summary = _corpus(Path(tmp), n)
            frames[n] = int(summary["frames"])
            measured[n] = {step: _measure(step, work, threads) for step in STEPS}
    rows = []
    for step in STEPS:
        a, b = measured[small][step], measured[large][step]
        ratio = b["peak_rss_mb"] / a["peak_rss_mb"]
        rows.append({
            "step": step,
            "sizes": (small, large),
            "frames": (frames[small], frames[large]),
            "peak_rss_mb": (a["peak_rss_mb"], b["peak_rss_mb"]),
            "baseline_rss_mb": (a["baseline_rss_mb"], b["baseline_rss_mb"]),
            "peak_anon_mb": (a["peak_anon_mb"], b["peak_anon_mb"]),
            "peak_file_mb": (a["peak_file_mb"], b["peak_file_mb"]),
            "growth_mb": (a["peak_rss_mb"] - a["baseline_rss_mb"], b["peak_rss_mb"] - b["baseline_rss_mb"]),
            "seconds": (a["seconds"], b["seconds"]),
            "ratio": ratio,
            "target": TARGET_RATIO if step != "normalize" else None,
            "met": ratio <= TARGET_RATIO if step != "normalize" else None,
        })  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=f"corpora of {QUICK_SIZES[0]} and {QUICK_SIZES[1]} videos")
    ap.add_argument("--sizes", type=int, nargs=2, metavar=("SMALL", "LARGE"), help="corpus sizes in videos")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads in the workers (0: default)")
    ap.add_argument("--worker", choices=STEPS, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(args.worker, args.work, args.threads)
        return
    t0 = time.perf_counter()
    rows = run(args.quick, tuple(args.sizes) if args.sizes else None, args.threads)
    print(f"{'step':10s} {'videos':>9s} {'frames':>15s} {'peak RSS MB':>15s} {'after imports':>15s} "
          f"{'peak anon MB':>15s} {'peak file MB':>15s} {'ratio':>6s}  target")  # fmt: skip
    for r in rows:
        pair = lambda k, f="{:.0f}": "/".join(f.format(v) for v in r[k])  # noqa: E731
        target = f"<= {r['target']}x: {'met' if r['met'] else 'NOT met'}" if r["target"] else "(reported)"
        print(f"{r['step']:10s} {pair('sizes'):>9s} {pair('frames'):>15s} {pair('peak_rss_mb'):>15s} "
              f"{pair('baseline_rss_mb'):>15s} {pair('peak_anon_mb'):>15s} {pair('peak_file_mb'):>15s} "
              f"{r['ratio']:5.2f}x  {target}")  # fmt: skip
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
