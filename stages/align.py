"""DVC stage `align`: parse every feature CSV once and align it to the track frames."""
import argparse
import logging

import _stage  # noqa: F401  (first: the src/ DVC hashed, one-line errors)
from trackfusion.results import RunFacts, write_figures
from trackfusion.params import stage_params
from trackfusion.data.build import align_corpus

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True)
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args()
    params = stage_params(args.params)
    with RunFacts("align") as facts:
        summary = align_corpus(params.data.raw_dir, args.out, params)
        facts["frames"] = summary["frames"]
    write_figures(args.metrics, summary)
