"""Clips on timeline time -> track frames on recording time, through one :class:`TimeMap`.

The map from timeline time to recording time is, in order: our own export's
``metadata["trackfusion"]["start_time"]`` (keeping its grid, so a round trip is exact),
the main recording's first video clip, its first clip on an audio track, else the
identity (``report["time_base"] == "timeline"``).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import opentimelineio as otio

from trackfusion import schema
from trackfusion.io.timeline.records import (
    METADATA_KEY, ClipSpan, ImportTally, ImportedTimeline, TimelineError, number,
)
from trackfusion.timemap import GRID_EPS, TimeMap

log = logging.getLogger(__name__)

MAX_HOURS = 24  # an edit longer than this is refused as broken (10 fps x 180 floats: 0.6 GB per day)

#: (timeline start s, source start s) of a clip of the recording
SourcePoint = tuple[float, float]


@dataclass
class TimelineClips:
    """What the tracks of one timeline hold, as the formats read them; time 0 is the earliest item."""

    spans: list[ClipSpan]
    audio_mains: list[SourcePoint]  # the recording's clips on audio tracks
    length: float  # s from the earliest item of a video track to the end of the last
    tracks_used: int
    fallback: list[str]  # media taken as the recording when it is not named in the edit
    source_origin: float | None  # the format's source time of recording 0, where it has one (EDL)


def _time_base(path: Path, tl: otio.schema.Timeline, clips: TimelineClips, fps: float,
               tally: ImportTally) -> tuple[str, TimeMap]:
    """The time base's name and the map on the recording's frame grid it gives."""
    own = tl.metadata.get(METADATA_KEY)
    own_start = number(own.get("start_time")) if own is not None and hasattr(own, "get") else None
    mains = sorted((s.start, s.source_start) for s in clips.spans if s.is_main and s.source_start is not None)
    audio_mains = sorted(clips.audio_mains)
    if own_start is not None:
        phase = own_start - math.floor(own_start * fps + GRID_EPS) / fps  # keep the exported grid
        return "trackfusion_metadata", TimeMap.from_offset(fps, 0.0 if phase * fps < GRID_EPS else phase, own_start)
    if mains:
        offset = mains[0][1] - mains[0][0]
        # Issue 21 makes these jump cuts segments of the map; today they keep the first clip's offset
        off_grid = [a for a, src in mains[1:] if abs((src - a) - offset) * fps > 0.5]
        tally.counts["main_clips_off_grid"] = len(off_grid)
        if off_grid:
            log.warning("%s: %d later clips of the main recording are cut from other places of it; their "
                        "frames keep the first clip's time mapping (first at timeline %.1f s)",
                        path, len(off_grid), off_grid[0])
        return "main_clip", TimeMap.from_offset(fps, 0.0, offset)
    if audio_mains:
        return "main_audio", TimeMap.from_offset(fps, 0.0, audio_mains[0][1] - audio_mains[0][0])
    return "timeline", TimeMap.from_offset(fps, 0.0, 0.0)


def sample(path: Path, tl: otio.schema.Timeline, clips: TimelineClips, fps: float, duration_s: float | None,
           tally: ImportTally) -> ImportedTimeline:
    """Frames at ``fps`` on recording time: frame ``j`` is recording time ``start_time + j / fps``.

    Timeline samples before recording time 0 are dropped (counted); ``duration_s`` fixes the
    output to recording times ``[0, duration_s)``, padding with inactive frames.
    """
    time_base, tmap = _time_base(path, tl, clips, fps, tally)
    offset = tmap.segments[0].source_start

    def first_frame(timeline_s: float) -> int:
        return tmap.first_frame_at(float(tmap.recording_time(timeline_s)))

    tl_lo, tl_hi = first_frame(0.0), first_frame(clips.length)
    if duration_s is None:
        j_lo, j_hi = max(tl_lo, tmap.first_frame_at(0.0)), tl_hi
    else:
        j_lo, j_hi = tmap.first_frame_at(0.0), tmap.first_frame_at(float(duration_s))
    if j_hi <= j_lo:
        raise TimelineError(
            f"{path}: no frame of the edit falls inside the recording (timeline maps to recording "
            f"{offset:.2f}..{offset + clips.length:.2f} s, time base {time_base})"
        )
    if (j_hi - j_lo) > MAX_HOURS * 3600 * fps:  # a few KB of XML can declare years: never allocate them
        raise TimelineError(
            f"{path}: the edit spans {(j_hi - j_lo) / fps / 3600:,.1f} hours (timeline "
            f"{offset:.1f}..{offset + clips.length:.1f} s); more than {MAX_HOURS} hours is taken for a broken file"
        )
    frames = np.zeros((j_hi - j_lo, schema.TRACK_WIDTH), np.float32)
    P = schema.NUM_TRACK_PARAMS
    for span in clips.spans:
        lo, hi = first_frame(span.start), first_frame(span.end)
        if hi <= lo:
            tally.counts["clips_shorter_than_a_frame"] += 1
            continue
        frames[max(lo, j_lo) - j_lo: max(min(hi, j_hi), j_lo) - j_lo, span.slot * P:(span.slot + 1) * P] = span.values
    tally.counts["frames_outside_recording"] = (tl_hi - tl_lo) - max(0, min(tl_hi, j_hi) - max(tl_lo, j_lo))
    start_time = tmap.frame_time(j_lo)
    report = {
        "file": str(path),
        "time_base": time_base,
        "fps": fps,
        "frames": int(len(frames)),
        "start_time": start_time,
        "tracks_used": clips.tracks_used,
        **{k: int(v) for k, v in sorted(tally.counts.items())},
        "params_defaulted": dict(sorted(tally.defaulted.items())),
        "params_no_filter": dict(sorted(tally.no_filter.items())),
        **({"main_media_fallback": clips.fallback} if clips.fallback else {}),
        **({"edl_source_origin_s": clips.source_origin} if clips.source_origin is not None else {}),
        "params_unreadable": dict(sorted(tally.unreadable.items())),
        "effects_ignored": dict(sorted(tally.ignored_effects.items())),
    }
    return ImportedTimeline(frames=frames, start_time=start_time, fps=fps, report=report)

