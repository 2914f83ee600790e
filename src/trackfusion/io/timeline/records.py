"""What every timeline format shares: the clip record, the per-format description, the
counts an import reports, the error, and the parameter defaults of the track layout."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import opentimelineio as otio

from trackfusion import schema

METADATA_KEY = "trackfusion"
FORMAT_VERSION = 1
#: parameters a clip carries (everything after ``active``), in track layout order
CLIP_PARAMS: tuple[str, ...] = schema.TRACK_PARAMS[2:]
#: output frame that x, y are pixels of (the synthetic corpus's; TODO move to schema beside the track layout)
FRAME_WIDTH, FRAME_HEIGHT = schema.FRAME_WIDTH, schema.FRAME_HEIGHT
DEFAULTS: dict[str, float] = {
    "scale": 100.0, "x": FRAME_WIDTH / 2, "y": FRAME_HEIGHT / 2, "crop_l": 0.0, "crop_r": 0.0, "crop_t": 0.0, "crop_b": 0.0,
}


class TimelineError(ValueError):
    """A timeline file cannot be imported or exported; the message names the file."""


@dataclass
class ImportedTimeline:
    frames: np.ndarray  # (T, 180) float32, schema track layout; rows not kept are all zero
    start_time: float  # recording time (s) of frame 0
    fps: float
    report: dict[str, Any] = field(default_factory=dict)
    #: (T,) uint8: 1 where that frame of the recording plays in the edit (picture or sound), 0 where dropped
    kept: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kept is None:
            self.kept = np.ones(len(self.frames), np.uint8)


@dataclass(frozen=True, eq=False)
class ClipSpan:
    """One clip of a video track as any format reads it: where it sits and what it shows."""

    slot: int
    start: float  # timeline s
    end: float
    values: np.ndarray  # (9,) float32: active, asset, parameters in track layout order
    is_main: bool  # shows the recording, so its timing ties the timeline to recording time
    timing: Any = None  # recording_time.ClipTiming: what part of its media it plays; None where the format gives none
    media: str = ""  # the clip's media name (its first candidate name), what a renderer looks its file up by


@dataclass
class ImportTally:
    """Everything an import could not carry over or had to decide, for its report."""

    counts: Counter = field(default_factory=Counter)
    defaulted: Counter = field(default_factory=Counter)  # parameters lost: a filter without them, or no format for them
    no_filter: Counter = field(default_factory=Counter)  # parameters the clip has no filter for: the editor's default
    unreadable: Counter = field(default_factory=Counter)
    ignored_effects: Counter = field(default_factory=Counter)
    floats: dict = field(default_factory=dict)  # counts in seconds (``timeline_s_without_recording``)


@dataclass(frozen=True)
class FileRead:
    """A format reader's result: the adapter's object, what was skipped before the adapter saw
    it, and the fix for what the adapter drops, applied to the timeline imported from it."""

    obj: Any
    skipped: Counter = field(default_factory=Counter)
    fix: Callable[[otio.schema.Timeline], None] = lambda timeline: None


def _no_explanation(path: Path, exc: Exception, edl_rate: float) -> TimelineError | None:
    return None


def _no_source_origin(path: Path, sources: list[float]) -> float | None:
    return None


def _any_track_count(path: Path, n_tracks: int) -> None:
    return None


@dataclass(frozen=True)
class TimelineFormat:
    """What differs between formats, so reading and writing never branch on the adapter."""

    adapter: str  # the OpenTimelineIO adapter name
    #: the file through the adapter; ``edl_rate`` is the timecode rate where the file does not say
    read: Callable[[Path, float], FileRead]
    #: parameters can be in the file, so a clip without a filter shows the editor's default (not a loss);
    #: export writes them as FCP filters
    carries_params: bool = True
    writes_sound: bool = True  # export puts the recording's sound under the edit
    params_carried: str = "filters"  # how export's report says the parameters travel
    #: a clearer error for an adapter's exception, else None
    explain_error: Callable[[Path, Exception, float], TimelineError | None] = _no_explanation
    #: the source time (s) that is recording time 0, given the main clips' source starts; None: 0, unreported
    source_origin: Callable[[Path, list[float]], float | None] = _no_source_origin
    check_track_count: Callable[[Path, int], None] = _any_track_count  # raises where export cannot hold the tracks
    #: our own writer, where the adapter cannot write what the format carries (None: the adapter writes)
    write: Callable[[otio.schema.Timeline, Path], None] | None = None
    #: the file may be at a rate that is no whole multiple of the frames' (29.97): every edge rounds to its frames
    any_rate: bool = False


def editing_rate(rate: float) -> "Fraction":
    """A timeline's frame rate as an exact fraction: 29.97 -> 30000/1001, 59.94 -> 60000/1001, 30 -> 30."""
    from fractions import Fraction

    for base in (24, 30, 48, 60, 120):
        if abs(rate - base * 1000 / 1001) < 1e-3:
            return Fraction(base * 1000, 1001)
    return Fraction(rate).limit_denominator(1001)


def number(value: Any) -> float | None:
    """`value` as a finite float, else None: file values are text, and may be anything."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def timeline_rate(tl: otio.schema.Timeline) -> float:
    """The rate a timeline's clips are counted at (our export writes every clip at one rate)."""
    for clip in tl.find_clips():
        if clip.source_range is not None:
            return float(clip.source_range.duration.rate)
    raise TimelineError(f"{tl.name}: the timeline holds no clip to take a frame rate from")


def clip_params(clip: otio.schema.Clip) -> dict[str, float]:
    """A clip's placement parameters from our metadata (export writes them all), defaults where absent."""
    own = clip.metadata.get(METADATA_KEY) or {}
    values = {p: number(own.get(p)) for p in CLIP_PARAMS}
    return {p: DEFAULTS[p] if v is None else v for p, v in values.items()}
