"""Clips on timeline time -> track frames on recording time, through one :class:`TimeMap`.

The map from timeline time to recording time is, in order: our own export's
``metadata["trackfusion"]`` (its ``start_time`` grid; an uncut export is one offset, so a
round trip is exact), the recording's clips, each its own segment (``recording_time``:
video, then audio where a cutaway covers the picture), else the identity
(``report["time_base"] == "timeline"``). Each frame of the recording takes the state of
every track at the timeline instant that plays it (its first use); a frame the edit never
plays is not ``kept`` and all zero.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import opentimelineio as otio

from trackfusion import schema
from trackfusion.io.timeline import recording_time
from trackfusion.io.timeline.records import (
    METADATA_KEY, ClipSpan, ImportTally, ImportedTimeline, TimelineError, number,
)
from trackfusion.io.timeline.recording_time import RecordingClip
from trackfusion.timemap import GRID_EPS, TimeMap

log = logging.getLogger(__name__)

MAX_HOURS = 24  # an edit longer than this is refused as broken (10 fps x 180 floats: 0.6 GB per day)


@dataclass
class TimelineClips:
    """What the tracks of one timeline hold, as the formats read them; time 0 is the earliest item."""

    spans: list[ClipSpan]
    recording: list[RecordingClip]  # the recording's clips, video and audio
    length: float  # s from the earliest item of a video track to the end of the last
    tracks_used: int
    fallback: list[str]  # media taken as the recording when it is not named in the edit
    source_origin: float | None  # the format's source time of recording 0, where it has one (EDL)


@dataclass
class _Base:
    """A time base: its name, the map (grid and segments) and the grid frames ``[lo, hi)`` to sample."""

    name: str
    tmap: TimeMap
    lo: int
    hi: int
    outside: int  # frames the edit plays outside ``[lo, hi)``


def _check_hours(path: Path, name: str, frames: int, fps: float, what: str) -> None:
    if frames > MAX_HOURS * 3600 * fps:  # a few KB of XML can declare years: never allocate them
        raise TimelineError(f"{path}: the edit spans {frames / fps / 3600:,.1f} hours ({what}, time base {name}); "
                            f"more than {MAX_HOURS} hours is taken for a broken file")


def _offset_base(path: Path, name: str, tmap: TimeMap, clips: TimelineClips, duration_s: float | None) -> _Base:
    """An uncut edit (one offset): frames span the timeline's extent on the recording, as before jump cuts."""
    offset = tmap.segments[0].source_start

    def first_frame(timeline_s: float) -> int:
        return tmap.first_frame_at(float(tmap.recording_time(timeline_s)))

    tl_lo, tl_hi = first_frame(0.0), first_frame(clips.length)
    if duration_s is None:
        lo, hi = max(tl_lo, tmap.first_frame_at(0.0)), tl_hi
    else:
        lo, hi = tmap.first_frame_at(0.0), tmap.first_frame_at(float(duration_s))
    if hi <= lo:
        raise TimelineError(f"{path}: no frame of the edit falls inside the recording (timeline maps to recording "
                            f"{offset:.2f}..{offset + clips.length:.2f} s, time base {name})")
    _check_hours(path, name, hi - lo, tmap.fps, f"timeline {offset:.1f}..{offset + clips.length:.1f} s")
    outside = (tl_hi - tl_lo) - max(0, min(tl_hi, hi) - max(tl_lo, lo))
    return _Base(name, tmap, lo, hi, outside)


def _time_base(path: Path, tl: otio.schema.Timeline, clips: TimelineClips, fps: float, duration_s: float | None,
               tally: ImportTally) -> _Base:
    """The time base, in the package docstring's order: our metadata's grid, the recording's clips
    (each its own segment, frames from recording 0 as far as its media reach), else the timeline."""
    own = tl.metadata.get(METADATA_KEY)
    own = own if own is not None and hasattr(own, "get") else None
    own_start = number(own.get("start_time")) if own is not None else None
    if own_start is not None:
        phase = own_start - math.floor(own_start * fps + GRID_EPS) / fps  # keep the exported grid
        phase = 0.0 if phase * fps < GRID_EPS else phase
        if own.get("edit_frames") is None:  # an uncut export: one offset, exactly as before jump cuts
            return _offset_base(path, "trackfusion_metadata", TimeMap.from_offset(fps, phase, own_start), clips,
                                duration_s)
    if not clips.recording:
        return _offset_base(path, "timeline", TimeMap.from_offset(fps, 0.0, 0.0), clips, duration_s)
    primary, pictures, handles, reach = recording_time.segments(path, clips.recording, fps, tally)
    name = "trackfusion_metadata" if own_start is not None else (
        "main_clip" if any(c.video for c in clips.recording) else "main_audio")
    grid = TimeMap(fps, phase if own_start is not None else 0.0)
    _check_hours(path, name, grid.first_frame_at(reach), fps, f"its recording reaches {reach:.1f} s")
    if not primary:
        raise TimelineError(f"{path}: no clip of the recording can be mapped to its time (see the warnings)")
    tmap = TimeMap(fps, grid.start_time, tuple(primary + handles))
    if duration_s is not None:
        lo, hi = tmap.first_frame_at(0.0), tmap.first_frame_at(float(duration_s))
    elif own_start is not None and number(own.get("frames")):
        lo = tmap.first_frame_at(own_start)
        hi = lo + int(number(own.get("frames")))
    else:
        lo, hi = tmap.first_frame_at(0.0), max(tmap.first_frame_at(reach), 1)
    _check_hours(path, name, hi - lo, fps, f"its recording reaches {reach:.1f} s")
    if hi <= lo:
        raise TimelineError(f"{path}: no frame of the edit falls inside the recording (time base {name})")
    recording_time.count_uses(tmap, primary, pictures, clips.length, tally)
    used = recording_time.used_frames(tmap, primary + handles)
    outside = sum((b - a) - max(0, min(b, hi) - max(a, lo)) for a, b in used)
    return _Base(name, tmap, lo, hi, outside)


def sample(path: Path, tl: otio.schema.Timeline, clips: TimelineClips, fps: float, duration_s: float | None,
           tally: ImportTally) -> ImportedTimeline:
    """Frames at ``fps`` on recording time: frame ``j`` is recording time ``start_time + j / fps``.

    Each frame takes every track's state at the timeline instant that plays it; ``kept`` is 0
    where no instant does. Frames the edit plays outside the grid are counted
    (``frames_outside_recording``); ``duration_s`` fixes the output to recording times
    ``[0, duration_s)``.
    """
    # the recording's sound may run past the last video item (the fcp_xml adapter drops trailing gaps)
    clips = replace(clips, length=max([clips.length] + [c.end for c in clips.recording]))
    base = _time_base(path, tl, clips, fps, duration_s, tally)
    start_time = base.tmap.frame_time(base.lo)
    tmap = TimeMap(fps, start_time, base.tmap.segments)
    n = base.hi - base.lo
    eps = GRID_EPS / fps
    at = recording_time.frame_timeline_times(tmap, n)  # (n,) timeline time of each frame, NaN: dropped
    kept = np.isfinite(at) & (at >= -eps) & (at < clips.length - eps)
    frames = np.zeros((n, schema.TRACK_WIDTH), np.float32)
    order = np.flatnonzero(kept)
    order = order[np.argsort(at[order], kind="stable")]
    times = at[order]
    P = schema.NUM_TRACK_PARAMS
    for span in clips.spans:
        a, b = np.searchsorted(times, span.start - eps), np.searchsorted(times, span.end - eps)
        if b <= a:
            key = "clips_shorter_than_a_frame" if (span.end - span.start) * fps < 1 else "clips_on_no_kept_frame"
            tally.counts[key] += 1
            continue
        frames[order[a:b], span.slot * P:(span.slot + 1) * P] = span.values
    tally.counts["frames_outside_recording"] = base.outside
    report = {
        "file": str(path),
        "time_base": base.name,
        "fps": fps,
        "frames": int(n),
        "kept_frames": int(kept.sum()),
        "start_time": start_time,
        "tracks_used": clips.tracks_used,
        **{k: int(v) for k, v in sorted(tally.counts.items())},
        "timeline_s_without_recording": float(tally.floats.get("timeline_s_without_recording", 0.0)),
        "params_defaulted": dict(sorted(tally.defaulted.items())),
        "params_no_filter": dict(sorted(tally.no_filter.items())),
        **({"main_media_fallback": clips.fallback} if clips.fallback else {}),
        **({"edl_source_origin_s": clips.source_origin} if clips.source_origin is not None else {}),
        "params_unreadable": dict(sorted(tally.unreadable.items())),
        "effects_ignored": dict(sorted(tally.ignored_effects.items())),
    }
    for key in ("recording_reused_frames", "recording_out_of_order_clips", "time_remaps", "speed_changes",
                "clips_bad_source_range", "clips_past_media_end", "recordings_claiming_id"):
        report.setdefault(key, 0)
    return ImportedTimeline(frames=frames, start_time=start_time, fps=fps, report=report, kept=kept.astype(np.uint8))
