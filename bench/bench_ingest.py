"""Ingest benchmark: pandas' C engine against pyarrow on a realistic visual CSV.

    .venv/bin/python bench/bench_ingest.py [--rows 36000] [--repeat 3]

Generates a one-hour visual table (36,000 rows x 523 columns, about 12 Hz samples,
CLIP refreshed once a second and held, saliency and face fields often empty) in a
temporary folder, times the raw parse of each reader (best of ``--repeat``) and the
full ``trackfusion.io.read_visual_csv`` (which adds the header and field-count checks,
cleaning and the float16 CLIP conversion), and prints MB/s and the ratios.
"""
from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pacsv

from trackfusion import schema
from trackfusion.io import read_visual_csv


def write_visual_csv(path: Path, rows: int, seed: int = 0) -> None:
    """A visual table shaped like the real extractor's output."""
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.uniform(0.07, 0.10, rows))  # ~12 Hz, jittered
    n_clip = rows // 12 + 1  # CLIP refreshed about once a second, held in between
    clip = rng.normal(0, 1, (n_clip, schema.CLIP_DIM)).astype(np.float32)
    clip /= np.linalg.norm(clip, axis=1, keepdims=True)
    clip_text = [",".join(f"{v:.8f}" for v in vec) for vec in clip]
    header = ",".join(schema.input_names(schema.VISUAL_FILE_COLUMNS))
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(header + "\n")
        for i in range(rows):
            faces = int(rng.integers(0, 2))
            sal = "" if rng.random() < 0.3 else f"{rng.random():.6f},{rng.random():.6f}"
            sal = sal or ","
            face = ",".join(f"{rng.random():.6f}" for _ in schema.FACE_FIELDS) if faces else "," * 4
            fh.write(
                f"{times[i]:.4f},{rng.random():.6f},{rng.random() * 30:.6f},{sal},{faces},{face},"
                f"{clip_text[i // 12]}\n"
            )


def bench(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=36_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench video 2025-03-11 22-57-01-575_visual_features.csv"
        t0 = time.perf_counter()
        write_visual_csv(path, args.rows)
        mb = path.stat().st_size / 1e6
        print(f"generated {args.rows} rows x {len(schema.VISUAL_FILE_COLUMNS)} columns, {mb:.1f} MB "
              f"in {time.perf_counter() - t0:.1f} s")
        data = path.read_bytes()
        t_read = bench(lambda: path.read_bytes(), args.repeat)
        t_pandas = bench(lambda: pd.read_csv(io.BytesIO(data), engine="c"), args.repeat)
        t_pandas32 = bench(lambda: pd.read_csv(io.BytesIO(data), engine="c", dtype=np.float32), args.repeat)
        t_arrow = bench(lambda: pacsv.read_csv(io.BytesIO(data)), args.repeat)
        t_arrow_pd = bench(lambda: pd.read_csv(io.BytesIO(data), engine="pyarrow"), args.repeat)
        t_count = bench(lambda: data.count(b","), args.repeat)
        t_full = bench(lambda: read_visual_csv(path), args.repeat)
        rows = [
            ("read_bytes (disk/page cache)", t_read),
            ("pandas C engine", t_pandas),
            ("pandas C engine, float32", t_pandas32),
            ("pyarrow.csv.read_csv", t_arrow),
            ("pandas engine=pyarrow", t_arrow_pd),
            ("field-count check (bytes.count)", t_count),
            ("trackfusion read_visual_csv", t_full),
        ]
        print(f"{'reader':36s} {'s':>8s} {'MB/s':>8s} {'vs pandas C':>12s}")
        for name, t in rows:
            print(f"{name:36s} {t:8.3f} {mb / t:8.1f} {t / t_pandas:11.2f}x")
        winner = "pandas C engine" if t_pandas <= t_arrow else "pyarrow"
        print(f"pyarrow / pandas C time ratio: {t_arrow / t_pandas:.2f} -> faster here: {winner}")


if __name__ == "__main__":
    main()
