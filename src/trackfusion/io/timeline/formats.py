"""The registry: a file's extension chooses its format once; a new format adds one module here."""
from __future__ import annotations

from pathlib import Path

from trackfusion.io.timeline import edl, fcp7, fcpxml, mlt, otio_native
from trackfusion.io.timeline.records import TimelineError, TimelineFormat

#: extension -> format, richest first: when one video has several, the first one here is imported
FORMATS: dict[str, TimelineFormat] = {".otio": otio_native.FORMAT, ".xml": fcp7.FORMAT, ".edl": edl.FORMAT}
#: extension -> OpenTimelineIO adapter name (the formats import reads)
ADAPTERS: dict[str, str] = {ext: fmt.adapter for ext, fmt in FORMATS.items()}
#: what export writes: every imported format, and Final Cut Pro / DaVinci Resolve's FCPXML and Shotcut /
#: Kdenlive's MLT (written for those editors, not imported)
EXPORT_FORMATS: dict[str, TimelineFormat] = {**FORMATS, ".fcpxml": fcpxml.FORMAT, ".mlt": mlt.FORMAT}


def format_for(path: Path, write: bool = False) -> TimelineFormat:
    formats = EXPORT_FORMATS if write else FORMATS
    if path.suffix.lower() in EXPORT_FORMATS:  # an export-only format: its reader says it is written, not read
        return EXPORT_FORMATS[path.suffix.lower()]
    try:
        return formats[path.suffix.lower()]
    except KeyError:
        raise TimelineError(
            f"{path}: unknown timeline extension '{path.suffix}'; expected one of {', '.join(formats)}"
        ) from None
