"""OpenTimelineIO's own JSON (``.otio``, the ``otio_json`` adapter): everything travels,
parameters in ``metadata["trackfusion"]`` and as FCP filters (so ``otioconvert`` to XML keeps them)."""
from __future__ import annotations

from pathlib import Path

import opentimelineio as otio

from trackfusion.io.timeline.records import FileRead, TimelineFormat

ADAPTER = "otio_json"


def read(path: Path, edl_rate: float) -> FileRead:
    return FileRead(otio.adapters.read_from_file(str(path), adapter_name=ADAPTER))


FORMAT = TimelineFormat(adapter=ADAPTER, read=read, params_carried="metadata+filters")
