"""DVC stage `generate`: write the deterministic synthetic corpus (SPEC section 7)."""
import argparse
import logging

import _stage  # noqa: F401  (first: the src/ DVC hashed, one-line errors)
from trackfusion.params import stage_params
from trackfusion.results import RunFacts
from trackfusion.data.synthetic import generate_corpus

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    params = stage_params(args.params)
    with RunFacts("generate") as facts:
        summary = generate_corpus(args.out, params.synthetic, fps=params.data.fps)
        facts["videos"] = summary["videos"]
    logging.getLogger("generate").info("wrote %d videos to %s", summary["videos"], args.out)
