"""DVC stage `select`: train the selection model on whole recordings and score it beside the selection
references on the test videos (metrics/selection.json, models/selection.pt)."""
import argparse
import logging

import _stage  # noqa: F401  (first: the src/ DVC hashed, one-line errors)
from trackfusion.params import stage_params
from trackfusion.results import run_facts_path
from trackfusion.experiment.selection import run_select

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--corpus", required=True, help="normalised corpus: the model's inputs")
    parser.add_argument("--aligned", required=True, help="aligned corpus: the rules' features in their own units")
    parser.add_argument("--model", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--counts", required=True, help="each video's kept-frame counts per row (JSON)")
    args = parser.parse_args()
    params = stage_params(args.params)
    run_select(args.corpus, args.aligned, params, args.model, args.metrics, facts_path=run_facts_path("select"),
               counts_path=args.counts)
