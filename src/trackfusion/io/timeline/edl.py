"""CMX 3600 EDL (``.edl``, the ``cmx_3600`` adapter): one video track, no parameters, no rate.

An EDL does not carry its frame rate (``timeline.edl_rate`` gives it) nor any clip
parameter (every one imports as its default, counted as lost). Its source timecode is
the recording's own timecode, not its time.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import opentimelineio as otio

from trackfusion.io.timeline.records import FileRead, TimelineError, TimelineFormat

log = logging.getLogger(__name__)

ADAPTER = "cmx_3600"


def read(path: Path, edl_rate: float) -> FileRead:
    return FileRead(otio.adapters.read_from_file(str(path), adapter_name=ADAPTER, rate=edl_rate))


def explain_error(path: Path, exc: Exception, edl_rate: float) -> TimelineError | None:
    """A clip duration the adapter cannot read is most often a wrong rate: say which to set."""
    if "duration" not in str(exc).lower():
        return None
    return TimelineError(
        f"{path}: not a readable EDL at {edl_rate:g} fps ({type(exc).__name__}: {exc}); an EDL does not "
        "carry its frame rate: set timeline.edl_rate in params.yaml to your editor's (24, 25, 30 ...)"
    )


def source_origin(path: Path, sources: list[float]) -> float:
    """Recorders and cameras start timecode on a whole hour (00:00:00:00, 01:00:00:00), so the
    recording starts at the whole hour at or below its earliest source-in."""
    if not sources:
        return 0.0
    tc0 = math.floor(min(sources) / 3600.0 + 1e-9) * 3600.0
    if tc0:
        log.info("%s: EDL source timecode %02d:00:00:00 is recording time 0", path, int(tc0 // 3600))
    return tc0


def check_track_count(path: Path, n_tracks: int) -> None:
    if n_tracks > 1:
        raise TimelineError(f"{path}: a CMX 3600 EDL carries one video track; these frames use {n_tracks} "
                            "track slots (write .otio or .xml instead)")


FORMAT = TimelineFormat(adapter=ADAPTER, read=read, carries_params=False, writes_sound=False, params_carried="none",
                        explain_error=explain_error, source_origin=source_origin, check_track_count=check_track_count)
