"""Ingest benchmark: pandas' C engine against pyarrow on a realistic visual CSV.

    .venv/bin/python bench/bench_ingest.py [--quick] [--rows 36000] [--repeat 3]

Generates a one-hour visual table (36,000 rows x 523 columns, about 12 Hz samples,
CLIP refreshed once a second and held, saliency and face fields often empty) in a
temporary folder, times the raw parse of each reader (best of ``--repeat``) and the
full ``trackfusion.io.features.read_visual_csv`` (which adds the header and field-count checks,
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
from trackfusion.io.features import read_visual_csv
from timing import best_of  # bench/ is on sys.path when a benchmark runs


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




def run(quick: bool = False, rows: int | None = None, repeat: int | None = None) -> list[dict]:
    """Time each reader on one generated visual table; one dict per reader.

    Keys: ``name``, ``seconds`` (best of `repeat`), ``mb_per_s``, ``vs_pandas_c`` (time
    ratio to pandas' C engine), ``rows``, ``mb``; the pyarrow row also carries
    ``faster`` (the reader that won this run) and ``engine_in_io`` (what
    ``trackfusion.io.features`` uses). `quick`: 6,000 rows, best of 2.
    """
    from trackfusion.io import features as tf_io

    rows = rows or (6_000 if quick else 36_000)
    repeat = repeat or (2 if quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench video 2025-03-11 22-57-01-575_visual_features.csv"
        write_visual_csv(path, rows)
        mb = path.stat().st_size / 1e6
        data = path.read_bytes()
        t_read = best_of(lambda: path.read_bytes(), repeat)
        t_pandas = best_of(lambda: pd.read_csv(io.BytesIO(data), engine="c"), repeat)
        t_pandas32 = best_of(lambda: pd.read_csv(io.BytesIO(data), engine="c", dtype=np.float32), repeat)
        t_arrow = best_of(lambda: pacsv.read_csv(io.BytesIO(data)), repeat)
        t_arrow_pd = best_of(lambda: pd.read_csv(io.BytesIO(data), engine="pyarrow"), repeat)
        t_count = best_of(lambda: data.count(b","), repeat)
        t_full = best_of(lambda: read_visual_csv(path), repeat)
    timings = [
        ("read_bytes (disk/page cache)", t_read),
        ("pandas C engine", t_pandas),
        ("pandas C engine, float32", t_pandas32),
        ("pyarrow.csv.read_csv", t_arrow),
        ("pandas engine=pyarrow", t_arrow_pd),
        ("field-count check (bytes.count)", t_count),
        ("trackfusion read_visual_csv", t_full),
    ]
    out = [{"name": name, "seconds": t, "mb_per_s": mb / t, "vs_pandas_c": t / t_pandas, "rows": rows, "mb": mb}
           for name, t in timings]  # fmt: skip
    arrow = next(r for r in out if r["name"] == "pyarrow.csv.read_csv")
    arrow["faster"] = "pandas C engine" if t_pandas <= t_arrow else "pyarrow"
    arrow["engine_in_io"] = "pandas C engine" if getattr(tf_io, "_ENGINE", "c") == "c" else "pyarrow"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=36_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="6,000 rows, best of 2 (unless --rows/--repeat given)")
    args = ap.parse_args()
    rows_arg = args.rows if not args.quick or args.rows != 36_000 else None
    repeat_arg = args.repeat if not args.quick or args.repeat != 3 else None
    t0 = time.perf_counter()
    results = run(args.quick, rows_arg, repeat_arg)
    print(f"{results[0]['rows']} rows x {len(schema.VISUAL_FILE_COLUMNS)} columns, {results[0]['mb']:.1f} MB "
          f"(generated and timed in {time.perf_counter() - t0:.1f} s)")  # fmt: skip
    print(f"{'reader':36s} {'s':>8s} {'MB/s':>8s} {'vs pandas C':>12s}")
    for r in results:
        print(f"{r['name']:36s} {r['seconds']:8.3f} {r['mb_per_s']:8.1f} {r['vs_pandas_c']:11.2f}x")
    arrow = next(r for r in results if "faster" in r)
    print(f"pyarrow / pandas C time ratio: {arrow['vs_pandas_c']:.2f} -> faster here: {arrow['faster']} "
          f"(trackfusion.io.features uses: {arrow['engine_in_io']})")


if __name__ == "__main__":
    main()
