"""The `trackfusion` console script: one subcommand per task.

Adding a subcommand is one entry in COMMANDS: a name, a help line, a function that
adds its arguments to an argparse parser, and a function that runs it and returns an
exit status. Put the two functions in the library module that does the work (as
`trackfusion.data.synthetic` does), so `python -m trackfusion.<module>` and
`trackfusion <command>` share them.

    trackfusion generate --params params.yaml --out data/synthetic
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass

from trackfusion.experiment import dvc_experiments as experiments
from trackfusion.experiment import edit
from trackfusion.data import extract, ingest
from trackfusion.data import synthetic
from trackfusion.io import render
from trackfusion.errors import debugging, is_expected, one_line
from trackfusion.params import ParamsError


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: tuple[Command, ...] = (
    Command("generate", "write the synthetic corpus (SPEC section 3 layout)", synthetic.add_arguments, synthetic.run),
    Command("extract", "make the feature tables of recordings (video files) for the pipeline (extra: [extract])",
            extract.add_arguments, extract.run),
    Command("ingest", "build a raw corpus from your own edited timelines (.otio, FCP 7 XML, EDL)",
            ingest.add_arguments, ingest.run),
    Command("edit", "apply a trained model to a new recording's feature tables and write the edit as a timeline",
            edit.add_arguments, edit.run),
    Command("render", "render an edit of a recording to a video file, to watch it (extra: [extract])",
            render.add_arguments, render.run),
    Command("experiments", "summarise the seeds and shuffle-control experiments from `dvc exp show`",
            experiments.add_arguments, experiments.run),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trackfusion", description="Learn how a video editor edits.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages too")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args._run(args)
    except ParamsError as exc:  # one clear line, no traceback, before any work (SPEC section 8)
        if debugging():
            raise
        parser.exit(2, f"trackfusion {args.command}: {exc}\n")
    except Exception as exc:  # an expected condition ends in one line, as the stages do; a bug keeps its traceback
        if debugging() or not is_expected(exc, exc.__traceback__):
            raise
        print(one_line(exc), file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
