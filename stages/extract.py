"""DVC stage `extract`: feature tables made from the recordings in data.videos_dir (none there: nothing to do)."""
import argparse
import logging
from pathlib import Path

import _stage  # noqa: F401  (first: the src/ DVC hashed, one-line errors)
from trackfusion.results import RunFacts, write_figures
from trackfusion.data.extract import extract_recordings, find_recordings
from trackfusion.params import stage_params

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, help="tables go to OUT/features/")
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args()
    params = stage_params(args.params)
    videos = find_recordings(params.data.videos_dir)
    with RunFacts("extract") as facts:
        summary = extract_recordings(videos, Path(args.out), params.extract, clip=params.extract.clip)
        facts["recordings"] = summary["recordings"]
    write_figures(args.metrics, summary)
