"""Run every benchmark of SPEC section 10 and write one table to bench/results.md.

    .venv/bin/python bench/run_all.py [--quick] [--out bench/results.md] [--threads N] [--only NAME ...]
    make bench          # the same, full size

Runs, in one process and one after the other, ``bench_alignment``, ``bench_ingest``,
``bench_training`` (Trainer step and data loading) and ``bench_memory`` (whose
measurements run in subprocesses of their own) through their ``run(quick)``, prints
one table (benchmark, measure, value, reference, ratio, target, met?) and writes it,
with the machine it ran on and the exact command, to ``--out`` atomically. Every ratio
compares two figures measured in this same run. A benchmark that fails is reported in
the table (and the exit status is 1); the others still run.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "src"))

BENCHMARKS = ("alignment", "ingest", "training", "memory")
HEADER = ("benchmark", "measure", "value", "reference", "ratio", "target", "met?")


def _row(bench: str, measure: str, value: str, reference: str = "", ratio: float | None = None,
         target: str = "", met: bool | None = None) -> dict[str, Any]:  # fmt: skip
    return {"benchmark": bench, "measure": measure, "value": value, "reference": reference,
            "ratio": "" if ratio is None else f"{ratio:.2f}x", "target": target,
            "met?": "" if met is None else ("yes" if met else "NO")}  # fmt: skip


# ----------------------------------------------------------------------------- per benchmark
def alignment_rows(quick: bool) -> list[dict[str, Any]]:
    import bench_alignment

    rows = []
    for r in bench_alignment.run(quick):
        label = (f"{r['case']}: {r['videos']} video(s), {r['frames']:,} frames, {r['output_mb']:.0f} MB out")
        fps, s = r["frames_per_s"], r["seconds"]
        rows.append(_row("alignment", f"{label}; align vs pandas merge_asof", f"{fps['align']:,.0f} frames/s",
                         f"{fps['merge_asof']:,.0f} frames/s", r["speedup_vs_merge_asof"],
                         f">= {r['target_speedup']:.0f}x faster", r["meets_speedup"]))  # fmt: skip
        rows.append(_row("alignment", f"{r['case']}: align vs merge_asof on one float32 block (info)",
                         f"{s['align']:.3f} s", f"{s['merge_asof_block']:.3f} s",
                         r["speedup_vs_merge_asof_block"], "(reported)"))  # fmt: skip
        rows.append(_row("alignment", f"{r['case']}: align time vs plain memory copy of the output",
                         f"{s['align']:.3f} s ({r['mb_per_s']['align']:,.0f} MB/s)",
                         f"{s['copy']:.4f} s ({r['mb_per_s']['copy']:,.0f} MB/s)",
                         r["times_slower_than_copy"], f"<= {r['target_copy_ratio']:.0f}x the copy time",
                         r["meets_copy"]))  # fmt: skip
    return rows


def ingest_rows(quick: bool) -> list[dict[str, Any]]:
    import bench_ingest

    res = {r["name"]: r for r in bench_ingest.run(quick)}
    c, arrow, full = res["pandas C engine"], res["pyarrow.csv.read_csv"], res["trackfusion read_visual_csv"]
    arrow_pd = res["pandas engine=pyarrow"]
    label = f"visual CSV {c['rows']:,} rows, {c['mb']:.0f} MB"
    return [
        _row("ingest", f"{label}: pandas C engine vs pyarrow.csv (time ratio pyarrow/C)",
             f"{c['mb_per_s']:.0f} MB/s", f"{arrow['mb_per_s']:.0f} MB/s", arrow["vs_pandas_c"],
             f"io uses the faster (io: {arrow['engine_in_io']})",
             arrow["faster"] == arrow["engine_in_io"]),
        _row("ingest", "pandas engine=pyarrow (info)", f"{arrow_pd['mb_per_s']:.0f} MB/s",
             f"{c['mb_per_s']:.0f} MB/s", arrow_pd["vs_pandas_c"], "(reported)"),
        _row("ingest", "trackfusion read_visual_csv, checks + cleaning + float16 (vs raw C parse)",
             f"{full['mb_per_s']:.0f} MB/s", f"{c['mb_per_s']:.0f} MB/s", full["vs_pandas_c"], "(reported)"),
    ]  # fmt: skip


def training_rows(quick: bool) -> list[dict[str, Any]]:
    import bench_training

    res = {r["name"]: r for r in bench_training.run(quick)}
    out = []
    step = res["Trainer step time (same batches)"]
    out.append(_row("training", "Trainer step vs bare PyTorch loop (same model, batches, AdamW)",
                    f"{step['value']:.1f} ms/step", f"{step['reference']:.1f} ms/step", step["ratio"],
                    "<= 1.1x bare", step["ratio"] <= 1.1))  # fmt: skip
    dl = res["Trainer step time (DataLoader, mmap corpus)"]
    out.append(_row("training", "Trainer step fed by the DataLoader (mmap corpus) vs bare loop (info)",
                    f"{dl['value']:.1f} ms/step", f"{dl['reference']:.1f} ms/step", dl["ratio"], "(reported)"))
    for name in ("Trainer frames/s, default multimodal", "Trainer frames/s, default baseline",
                 "Trainer frames/s, d_model 256 x 6 layers multimodal"):  # fmt: skip
        out.append(_row("training", name, f"{res[name]['value']:,.0f} frames/s", target="(reported)"))
    win = res["data loading windows/s (mmap, num_workers=0)"]
    load = res["data loading frames/s vs training consumption"]
    out.append(_row("data loading", f"mmap corpus, num_workers=0: {win['value']:,.0f} windows/s; "
                    "frames/s vs frames/s the default multimodal training consumes",
                    f"{load['value']:,.0f} frames/s", f"{load['reference']:,.0f} frames/s", load["ratio"],
                    ">= 5x consumed", load["ratio"] >= 5))  # fmt: skip
    return out


def memory_rows(quick: bool, threads: int) -> list[dict[str, Any]]:
    import bench_memory

    out = []
    for r in bench_memory.run(quick, threads=threads):
        small, large = r["sizes"]
        what = {"align": "align_corpus", "normalize": "normalize_corpus",
                "train": "one multimodal training epoch (train_model, val + test pass)"}[r["step"]]  # fmt: skip
        measure = (f"peak RSS of {what}, {large} vs {small} videos ({r['frames'][1]:,} vs {r['frames'][0]:,} frames;"
                   f" after imports {r['baseline_rss_mb'][1]:.0f} MB, anon peak {r['peak_anon_mb'][1]:.0f} vs "
                   f"{r['peak_anon_mb'][0]:.0f} MB, file-backed peak {r['peak_file_mb'][1]:.0f} vs "
                   f"{r['peak_file_mb'][0]:.0f} MB)")  # fmt: skip
        target = f"<= {r['target']}x" if r["target"] else "(reported)"
        out.append(_row("memory", measure, f"{r['peak_rss_mb'][1]:.0f} MB", f"{r['peak_rss_mb'][0]:.0f} MB",
                        r["ratio"], target, r["met"]))  # fmt: skip
    return out


# ----------------------------------------------------------------------------- machine and table
def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def machine() -> list[tuple[str, str]]:
    cpu = next((ln.split(":", 1)[1].strip() for ln in _read("/proc/cpuinfo").splitlines()
                if ln.startswith("model name")), platform.processor() or platform.machine())  # fmt: skip
    mem_kb = next((int(ln.split()[1]) for ln in _read("/proc/meminfo").splitlines() if ln.startswith("MemTotal")), 0)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = []
    for mod in ("torch", "numpy", "pandas", "pyarrow"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            versions.append(f"{mod} (not installed)")
    import torch

    accel = "CUDA: " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device (CPU only)"
    return [
        ("CPU", f"{cpu}; {os.cpu_count()} logical cores, {usable} usable; torch intra-op threads "
                f"{torch.get_num_threads()}"),
        ("RAM", f"{mem_kb / 1024 / 1024:.1f} GiB"),
        ("Accelerator", accel),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("Libraries", ", ".join(versions)),
    ]  # fmt: skip


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def table(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """(plain text for the terminal, markdown for results.md)."""
    widths = {h: max(len(h), *(len(str(r[h])) for r in rows)) for h in HEADER}
    widths["measure"] = min(widths["measure"], 70)
    text = ["  ".join(h.ljust(widths[h]) for h in HEADER)]
    for r in rows:
        measure = r["measure"] if len(r["measure"]) <= 70 else r["measure"][:67] + "..."
        cells = {**r, "measure": measure}
        text.append("  ".join(str(cells[h]).ljust(widths[h]) for h in HEADER))
    md = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    md += ["| " + " | ".join(str(r[h]).replace("|", "/") for h in HEADER) + " |" for r in rows]
    return "\n".join(text), "\n".join(md)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small inputs: a smoke run, figures not comparable")
    ap.add_argument("--out", type=Path, default=BENCH / "results.md", help="markdown file (default bench/results.md)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these benchmarks")
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    command = " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable, Path.cwd())
                                                if sys.executable.startswith(str(Path.cwd())) else sys.executable,
                                                *sys.argv])  # fmt: skip
    started = dt.datetime.now().astimezone()
    load_before = _load()
    t_all = time.perf_counter()
    runners: dict[str, Callable[[], list[dict[str, Any]]]] = {
        "alignment": lambda: alignment_rows(args.quick),
        "ingest": lambda: ingest_rows(args.quick),
        "training": lambda: training_rows(args.quick),
        "memory": lambda: memory_rows(args.quick, args.threads),
    }
    rows: list[dict[str, Any]] = []
    durations: list[str] = []
    failed = False
    for name in args.only or BENCHMARKS:
        print(f"== {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            rows += runners[name]()
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failed = True
            traceback.print_exc()
            rows.append(_row(name, f"FAILED: {type(exc).__name__}: {exc}".splitlines()[0][:200], "", met=False))
        durations.append(f"{name} {time.perf_counter() - t0:.0f} s")
        print(f"== {name} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    total = time.perf_counter() - t_all

    text, md = table(rows)
    print(text)
    targets = [r for r in rows if r["met?"]]
    met = sum(r["met?"] == "yes" for r in targets)
    summary = f"{met} of {len(targets)} targets met"
    print(f"\n{summary}; total {total:.0f} s ({', '.join(durations)})")

    header = [
        "# trackfusion benchmark results",
        "",
        f"Generated by `bench/run_all.py` on {started:%Y-%m-%d %H:%M %Z}. Command:",
        "",
        f"    {command}",
        "",
        "Machine:",
        "",
        *[f"- {k}: {v}" for k, v in machine()],
        f"- Load average (1/5/15 min) before: {load_before}; after: {_load()}",
        "",
        f"Mode: {'QUICK (small inputs: a smoke run, figures not comparable with a full run)' if args.quick else 'full'}."
        f" Wall time: {total:.0f} s ({', '.join(durations)}). {summary}.",
        "",
        "Every ratio compares two figures measured in this same run, one after the other. Timings are "
        "best-of-N wall clock on a shared machine: when other work (e.g. a DVC pipeline) runs on the same "
        "cores, absolute figures are noisy and ratios can move by tens of percent between runs; the load "
        "averages above show how busy the machine was. Peak RSS is each step's own subprocess "
        "peak (VmHWM) and includes the interpreter and library imports (the 'after imports' figure) and "
        "memory-mapped corpus pages that were read (file-backed, reclaimable).",
        "",
        md,
        "",
    ]
    import trackfusion.atomic as atomic

    atomic.write_text(args.out, "\n".join(header))
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
