"""DVC stage `normalize`: fit z-scores on the train videos only and write the normalized corpus."""
import argparse
import logging

import _stage  # noqa: F401  (first: the src/ DVC hashed, one-line errors)
from trackfusion.params import stage_params
from trackfusion.results import RunFacts
from trackfusion.data.build import normalize_corpus

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--aligned", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    stage_params(args.params)  # fail early on invalid params, like every stage
    with RunFacts("normalize") as facts:
        facts["frames"] = normalize_corpus(args.aligned, args.out)["frames"]
