"""What every stage script does first: import the `src/` beside it, and end expected errors in one line.

DVC hashes the files of the checkout it runs in (`dvc exp run --run-all` runs in a copy
under `.dvc/tmp/exps/`), while the editable install points at the workspace's `src/`:
without the path below, a queued experiment would run whatever the workspace holds.

An expected condition (a missing or bad input file, no videos, an unreadable checkpoint,
a full disk) ends the stage with one line naming the file and the fix, exit status 1;
set TRACKFUSION_DEBUG=1 for the traceback. A bug still shows its traceback.

CPU numerics are pinned (`trackfusion.results.PINNED_NUMERICS`) before torch loads, so the
models, curves and edits of a fresh clone's `dvc repro` hash as the committed ones do.
"""
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from trackfusion.results import pin_numerics  # noqa: E402  (after the path above, before torch loads)

pin_numerics()  # the same float results on every x86-64 machine, so a fresh clone's dvc.lock stays as committed

from trackfusion.errors import debugging, is_expected, one_line  # noqa: E402


def _one_line(kind, exc, tb) -> None:
    if debugging() or not is_expected(exc, tb, SRC):
        sys.__excepthook__(kind, exc, tb)
        return
    print(one_line(exc), file=sys.stderr)


sys.excepthook = _one_line
