"""DVC stage `validate`: check the raw files and report coverage, gaps and faults."""
import argparse
import logging
from pathlib import Path

import _stage  # noqa: F401  (first: the src/ DVC hashed, one-line errors)
from trackfusion.atomic import write_text
from trackfusion.results import write_figures
from trackfusion.params import stage_params
from trackfusion.data.validation import validate_raw

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--report", required=True)
    args = parser.parse_args()
    params = stage_params(args.params)
    report, markdown = validate_raw(Path(params.data.raw_dir), params)
    write_figures(args.metrics, report)
    write_text(args.report, markdown)
