"""DVC stage `ingest`: the edits in data.videos_dir and the extracted tables as a raw corpus (SPEC section 3)."""
import argparse
import logging

import _stage  # noqa: F401  (first: the src/ DVC hashed, one-line errors)
from trackfusion.results import RunFacts, write_figures
from trackfusion.data.ingest import ingest_timelines
from trackfusion.params import stage_params

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--features", required=True, help="the extract stage's tables")
    parser.add_argument("--out", required=True, help="raw corpus folder: point data.raw_dir here")
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args()
    params = stage_params(args.params)
    with RunFacts("ingest") as facts:
        summary = ingest_timelines(params.data.videos_dir, args.features, args.out, params, allow_empty=True)
        facts["frames"] = summary["frames"]
    write_figures(args.metrics, summary)
