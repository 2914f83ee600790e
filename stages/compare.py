"""DVC stage `compare`: both models' test metrics, the pictures and plots/results.md."""
import argparse
import json
import logging
from pathlib import Path

import numpy as np

import _stage  # noqa: F401  (first: the src/ DVC hashed, one-line errors)
from trackfusion.experiment.compare import MODELS, run_compare

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--predictions", default="data/predictions/example.npz")
    parser.add_argument("--predict-metrics", default="metrics/predict.json")
    parser.add_argument("--experiments", default="plots/experiments.md", help="seeds/control write-up, if present")
    parser.add_argument("--references", default="metrics/references.json")
    args = parser.parse_args()
    example = np.load(args.predictions, allow_pickle=False)
    timelines = (
        example["truth"],
        {f"{m} roll-out": example[f"{m}_rollout"] for m in MODELS},
        float(example["fps"]),
        str(example["video_id"]),
    )
    rollout = {m: v["rollout"] for m, v in json.loads(Path(args.predict_metrics).read_text()).items() if m in MODELS}
    run_compare(
        metrics_paths={m: Path(f"metrics/{m}.json") for m in MODELS},
        live_dirs={m: Path(f"plots/{m}") for m in MODELS},
        out_dir=Path("plots/compare"),
        results_md=Path("plots/results.md"),
        compare_json=Path("metrics/compare.json"),
        timelines=timelines,
        rollout=rollout,
        experiments_md=Path(args.experiments),
        references=json.loads(Path(args.references).read_text(encoding="utf-8")),
    )
