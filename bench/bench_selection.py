"""Selection inference on long recordings: the selection model reads a whole recording at once (issue 22).

    .venv/bin/python bench/bench_selection.py [--quick] [--threads 2]

For a 30- and a 60-minute recording at 10 fps (18,000 and 36,000 frames of 5 + 522 model
inputs, random values: the cost does not depend on them), each in a fresh subprocess:
``keep_scores`` of the default selection ensemble (``select.ensemble`` models) plus ``decode_to_length`` to 40 %
of the recording. Figures per length:

- frames/s and the multiple of real time (frames/s / fps);
- peak RSS (VmHWM) of the whole run, and of the same process holding only the inputs
  (the reference measured in the same run: the recording's features must be in memory
  anyway), so ``model_mb`` is what the model adds;
- the ratio of the 60-minute peak to the 30-minute one (memory that grows with the
  frames only: <= 2x; the model's own part about 2x, linear, never quadratic).

``--quick``: 3- and 6-minute recordings.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from timing import vmhwm_mb  # bench/ is on sys.path when a benchmark runs

FPS = 10


def worker(minutes: float, threads: int, inputs_only: bool) -> dict[str, Any]:
    import numpy as np
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from trackfusion import schema, selection
    from trackfusion.learn.selection_model import Recording, SelectionConfig, SelectionEnsemble, keep_scores
    from trackfusion.params import Params

    torch.set_num_threads(threads)
    n = int(minutes * 60 * FPS)
    rng = np.random.default_rng(0)
    rec = Recording("bench", "test", rng.standard_normal((n, schema.AUDIO_WIDTH), dtype=np.float32),
                    rng.standard_normal((n, schema.VISUAL_WIDTH), dtype=np.float32), np.ones((n, 2), bool),
                    np.zeros(n, bool))
    if inputs_only:
        return {"peak_rss_mb": vmhwm_mb()}
    params = Params()
    model = SelectionEnsemble(SelectionConfig.from_params(params), params.select.ensemble).eval()
    decoding = selection.SelectionDecoding()
    start = time.perf_counter()
    scores = keep_scores(model, rec)
    kept = selection.decode_to_length(scores, FPS, decoding, int(0.4 * n))
    seconds = time.perf_counter() - start
    return {"frames": n, "seconds": seconds, "frames_per_s": n / seconds, "peak_rss_mb": vmhwm_mb(),
            "kept": int(kept.sum())}


def _spawn(minutes: float, threads: int, inputs_only: bool) -> dict[str, Any]:
    args = [sys.executable, __file__, "--worker", str(minutes), "--threads", str(threads)]
    done = subprocess.run(args + (["--inputs-only"] if inputs_only else []), capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool = False, threads: int = 2) -> list[dict[str, Any]]:
    rows = []
    for minutes in ((3, 6) if quick else (30, 60)):
        measured = _spawn(minutes, threads, False)
        floor = _spawn(minutes, threads, True)
        rows.append({"minutes": minutes, **measured, "realtime_x": measured["frames_per_s"] / FPS,
                     "inputs_rss_mb": floor["peak_rss_mb"],
                     "model_mb": measured["peak_rss_mb"] - floor["peak_rss_mb"]})
    rows.append({"minutes": "ratio", "peak_rss_ratio": rows[1]["peak_rss_mb"] / rows[0]["peak_rss_mb"],
                 "model_mb_ratio": rows[1]["model_mb"] / max(rows[0]["model_mb"], 1e-9)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--inputs-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.threads, args.inputs_only)))
        return
    rows = run(args.quick, args.threads)
    print("| recording | frames/s | x real time | peak RSS MB | inputs alone MB | model adds MB |")
    print("|---|---|---|---|---|---|")
    for r in rows[:-1]:
        print(f"| {r['minutes']} min | {r['frames_per_s']:,.0f} | {r['realtime_x']:,.0f} | {r['peak_rss_mb']:,.0f} | "
              f"{r['inputs_rss_mb']:,.0f} | {r['model_mb']:,.0f} |")
    print(f"\npeak RSS 60 / 30 min: {rows[-1]['peak_rss_ratio']:.2f}x; what the model adds: "
          f"{rows[-1]['model_mb_ratio']:.2f}x (linear in the frames: 2x)")


if __name__ == "__main__":
    main()
