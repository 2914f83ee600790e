"""DVC stage `references`: the reference predictors of when (cuts) and what (the layout) scored on the test
videos (metrics/references.json), each video's counts apart (for compare's intervals)."""
import argparse
import logging

import _stage  # noqa: F401  (first: the src/ DVC hashed, one-line errors)
from trackfusion.results import write_figures
from trackfusion.params import stage_params
from trackfusion.data.corpus import Corpus
from trackfusion.experiment.layout_references import run_layout_references
from trackfusion.experiment.references import run_references
from trackfusion.intervals import pop_video_counts, write_counts

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--corpus", required=True, help="aligned corpus: features in their own units")
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--counts", required=True, help="each video's counts per reference (JSON)")
    args = parser.parse_args()
    params = stage_params(args.params)
    figures = run_references(args.corpus, raw_dir=params.data.raw_dir)
    figures["layout"] = run_layout_references(Corpus(args.corpus), raw_dir=params.data.raw_dir)
    write_counts(args.counts, {"cuts": pop_video_counts(figures["references"]),
                               "layout": pop_video_counts(figures["layout"])})
    write_figures(args.metrics, figures)
