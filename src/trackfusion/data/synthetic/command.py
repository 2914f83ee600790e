"""``trackfusion generate`` and ``python -m trackfusion.data.synthetic``: params in, corpus out."""
from __future__ import annotations

import argparse
import json
import logging

from trackfusion.atomic import write_json
from trackfusion.data.synthetic.generate import generate_corpus
from trackfusion.params import ParamsError, command_params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default=None, help="params file; reads synthetic.* and data.fps (default: ./params.yaml, else the defaults)")
    parser.add_argument("--out", default="data/synthetic", help="corpus folder to write (replaced atomically)")
    parser.add_argument("--summary", default=None, help="also write the summary (faults per video) as JSON here")


def run(args: argparse.Namespace) -> int:
    params = command_params(args.params)
    summary = generate_corpus(args.out, params.synthetic, fps=params.data.fps)
    if args.summary:
        write_json(args.summary, summary)
    print(json.dumps({k: v for k, v in summary.items() if k != "fault_details"}, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trackfusion.data.synthetic", description="Write the synthetic corpus.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except ParamsError as exc:
        parser.exit(2, f"{parser.prog}: {exc}\n")
