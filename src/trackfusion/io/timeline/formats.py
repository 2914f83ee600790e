"""The registry: a file's extension chooses its format once; a new format adds one module here."""
from __future__ import annotations

from pathlib import Path

from trackfusion.io.timeline import edl, fcp7, otio_native
from trackfusion.io.timeline.records import TimelineError, TimelineFormat

#: extension -> format, richest first: when one video has several, the first one here is imported
FORMATS: dict[str, TimelineFormat] = {".otio": otio_native.FORMAT, ".xml": fcp7.FORMAT, ".edl": edl.FORMAT}
#: extension -> OpenTimelineIO adapter name
ADAPTERS: dict[str, str] = {ext: fmt.adapter for ext, fmt in FORMATS.items()}


def format_for(path: Path) -> TimelineFormat:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise TimelineError(
            f"{path}: unknown timeline extension '{path.suffix}'; expected one of {', '.join(FORMATS)}"
        ) from None
