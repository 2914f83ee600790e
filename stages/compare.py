"""DVC stage `compare`: both models' test metrics, the pictures and plots/results.md."""
import argparse
import json
import logging
from pathlib import Path

import _stage  # noqa: F401  (first: the src/ DVC hashed, one-line errors)
from trackfusion.data.corpus import Corpus
from trackfusion.experiment.compare import run_compare
from trackfusion.experiment.layout_references import with_layout_rule
from trackfusion.experiment.predict import read_example
from trackfusion.intervals import read_counts
from trackfusion.results import read_run_facts, run_facts_path
from trackfusion.learn import MODEL_KINDS

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--aligned", required=True, help="the aligned corpus: the layout rule's timelines")
    parser.add_argument("--predict-metrics", required=True)
    parser.add_argument("--experiments", required=True, help="seeds/control write-up, if present")
    parser.add_argument("--references", required=True)
    parser.add_argument("--selection", required=True, help="the select stage's metrics")
    parser.add_argument("--counts", nargs="+", required=True, help="the scoring stages' per-video counts (JSON)")
    kinds = tuple(kind.upper() for kind in MODEL_KINDS)
    parser.add_argument("--model-metrics", nargs=len(kinds), required=True, metavar=kinds,
                        help="the training stages' metrics files")
    parser.add_argument("--curves", nargs=len(kinds), required=True, metavar=kinds,
                        help="the training stages' DVCLive folders")
    parser.add_argument("--pictures", required=True, help="folder of the comparison's PNGs")
    parser.add_argument("--results", required=True, help="the write-up (Markdown)")
    parser.add_argument("--out", required=True, help="the comparison's metrics (JSON)")
    args = parser.parse_args()
    references = json.loads(Path(args.references).read_text(encoding="utf-8"))
    timelines = with_layout_rule(read_example(args.predictions), Corpus(args.aligned), references)
    predicted = json.loads(Path(args.predict_metrics).read_text())
    rollout = {m: v["rollout"] for m, v in predicted.items() if m in MODEL_KINDS}
    run_compare(
        metrics_paths=dict(zip(MODEL_KINDS, map(Path, args.model_metrics))),
        live_dirs=dict(zip(MODEL_KINDS, map(Path, args.curves))),
        out_dir=Path(args.pictures),
        results_md=Path(args.results),
        compare_json=Path(args.out),
        timelines=timelines,
        rollout=rollout,
        experiments_md=Path(args.experiments),
        references=references,
        run_facts=read_run_facts(),
        run_facts_md=run_facts_path("results").with_suffix(".md"),
        selection=json.loads(Path(args.selection).read_text(encoding="utf-8")),
        predicted=predicted,
        counts=read_counts(args.counts),
    )
