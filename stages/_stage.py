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
import errno
import os
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from trackfusion.results import pin_numerics  # noqa: E402  (after the path above, before torch loads)

pin_numerics()  # the same float results on every x86-64 machine, so a fresh clone's dvc.lock stays as committed

_DISK = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES}


def _expected(exc: BaseException, tb) -> bool:
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return True
    if isinstance(exc, OSError) and exc.errno in _DISK:
        return True
    if type(exc).__module__.startswith("trackfusion"):
        return True  # the project's own error types (params, files, checkpoints, training)
    if isinstance(exc, ValueError) and tb is not None:
        while tb.tb_next is not None:
            tb = tb.tb_next
        return Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(SRC)  # raised on purpose by our code
    return False


def _one_line(kind, exc, tb) -> None:
    if os.environ.get("TRACKFUSION_DEBUG") or not _expected(exc, tb):
        sys.__excepthook__(kind, exc, tb)
        return
    where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in str(exc) else ""
    print(f"error: {exc}{where}", file=sys.stderr)


sys.excepthook = _one_line
