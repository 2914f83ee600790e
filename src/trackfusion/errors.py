"""Expected conditions end a command or a stage in one line; bugs keep their traceback.

An expected condition is a missing or unreadable input file, a full or read-only disk,
one of the project's own error types (params, files, checkpoints, training, edits), or a
ValueError raised on purpose by the project's code. It prints ``error: <what, and the
fix>`` and exits with status 1; ``TRACKFUSION_DEBUG=1`` shows the traceback instead.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path
from types import TracebackType

#: the package's folder: a ValueError raised in here was raised on purpose
PACKAGE = Path(__file__).resolve().parent
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES}


def debugging() -> bool:
    """Tracebacks wanted (``TRACKFUSION_DEBUG`` set to anything but empty or 0)."""
    return os.environ.get("TRACKFUSION_DEBUG", "") not in ("", "0")


def is_expected(exc: BaseException, tb: TracebackType | None, package: Path = PACKAGE) -> bool:
    """Whether `exc` is an expected condition (module docstring) rather than a bug."""
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return True
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        return True
    if type(exc).__module__.startswith("trackfusion"):
        return True
    if isinstance(exc, ValueError) and tb is not None:
        while tb.tb_next is not None:
            tb = tb.tb_next
        return Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(package)
    return False


def one_line(exc: BaseException) -> str:
    """``error: <message>``, naming the file an OSError is about when its message does not."""
    where = ""
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in str(exc):
        where = f" ({exc.filename})"
    return f"error: {exc}{where}"
