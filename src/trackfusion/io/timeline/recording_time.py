"""The recording's clips -> the segments of one :class:`TimeMap`: every clip of the recording
plays its own stretch of it (its own source in-point and speed), so a jump cut is a segment.

A clip's video segments come first, then its audio's, then the handles clips play under a
transition: where several play at one timeline instant, the recording time shown is the
picture's, else the sound's (a cutaway or a title over the recording's sound). Where one
stretch of the recording plays at several instants, :meth:`TimeMap.timeline_time` answers
with the first in timeline order. What cannot be mapped is counted in the import's tally
and left out, and the rest of the edit is kept.
"""
from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import opentimelineio as otio

from trackfusion.io.timeline.records import ImportTally, number
from trackfusion.timemap import GRID_EPS, Segment, TimeMap

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipTiming:
    """What part of its media a clip plays: from ``source_start`` (s into the media, the media's
    own start subtracted) at ``speed``, with ``handles`` (s before, s after) played under
    transitions around its cut points."""

    source_start: float
    speed: float = 1.0
    media_end: float | None = None  # s, the media's available length where the format gives it
    media_key: str = ""  # which media file: two media named as the recording are two recordings
    handles: tuple[float, float] = (0.0, 0.0)
    time_remap: bool = False  # a speed that changes inside the clip, mapped at its mean speed

    def shifted(self, by: float) -> "ClipTiming":
        return replace(self, source_start=self.source_start + by,
                       media_end=None if self.media_end is None else self.media_end + by)


@dataclass(frozen=True)
class RecordingClip:
    """A clip of the recording on the timeline (s, time 0 the earliest item) and its timing."""

    start: float
    end: float
    timing: ClipTiming
    video: bool


def transition_handles(track: otio.schema.Track) -> dict[int, tuple[float, float]]:
    """Child index -> (s played before its cut, s after its end) under the track's transitions."""
    handles: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    children = list(track)
    for i, item in enumerate(children):
        if not isinstance(item, otio.schema.Transition):
            continue
        if i > 0:
            handles[i - 1][1] += item.out_offset.to_seconds()
        if i + 1 < len(children):
            handles[i + 1][0] += item.in_offset.to_seconds()
    return {i: (a, b) for i, (a, b) in handles.items()}


@dataclass(frozen=True)
class _Speed:
    speed: float = 1.0
    remap: bool = False
    #: FCP 7 Time Remap: in/out count the retimed clip (a frame per timeline frame), so the media frame
    #: is in x speed, or the filter's graph (``graphdict`` keyframes: retimed frame -> media frame)
    retimed: bool = False
    graph: tuple[tuple[float, float], ...] = ()


def _fcp_time_remap(fcp: Any) -> _Speed:
    params = fcp.get("parameter")
    params = [params] if params is None or hasattr(params, "get") else list(params)
    by_id = {str(p.get("parameterid") or "").lower(): p for p in params if hasattr(p, "get")}
    variable = str((by_id.get("variablespeed") or {}).get("value") or "0").strip().upper() in ("1", "TRUE")
    value = number((by_id.get("speed") or {}).get("value"))
    reverse = str((by_id.get("reverse") or {}).get("value") or "").strip().upper() == "TRUE"
    keys = (by_id.get("graphdict") or {}).get("keyframe")
    keys = [] if keys is None else ([keys] if hasattr(keys, "get") else list(keys))
    graph = sorted((w, v) for w, v in ((number(k.get("when")), number(k.get("value"))) for k in keys if hasattr(k, "get"))
                   if w is not None and v is not None)
    speed = (-1 if reverse else 1) * (value / 100.0 if value is not None else 1.0)
    return _Speed(speed, variable or value is None, True, tuple(graph) if len(graph) >= 2 else ())


def _speed(item: otio.core.Item) -> _Speed:
    """The clip's speed (1 = real time), whether it changes inside the clip (a time remap), and
    how FCP's Time Remap filter counts its source."""
    speed, remap = 1.0, False
    for effect in getattr(item, "effects", []):
        if isinstance(effect, otio.schema.LinearTimeWarp):  # FreezeFrame is one, at 0
            speed *= float(effect.time_scalar)
        elif isinstance(effect, otio.schema.TimeEffect):
            remap = True
        fcp = effect.metadata.get("fcp_xml")
        if hasattr(fcp, "get") and str(fcp.get("effectid") or "").lower() == "timeremap":
            found = _fcp_time_remap(fcp)
            return replace(found, speed=found.speed * speed, remap=found.remap or remap)
    return _Speed(speed, remap)


def clip_timing(item: otio.core.Item, handles: tuple[float, float] | None = None) -> ClipTiming | None:
    """Where in its media a clip plays; None where the format gives no source range."""
    if not isinstance(item, otio.schema.Clip) or item.source_range is None:
        return None
    start = item.source_range.start_time
    ref = item.media_reference
    available = getattr(ref, "available_range", None)
    media_end = None
    if available is not None:
        start = start - available.start_time.rescaled_to(start)
        media_end = available.duration.to_seconds()
    found = _speed(item)
    source, speed = start.to_seconds(), found.speed
    if found.graph:  # the editor's own map from the retimed clip to its media, linear over the clip
        whens, values = np.array(found.graph).T
        w0, d = start.value, item.source_range.duration.rescaled_to(start).value
        v0, v1 = np.interp([w0, w0 + d], whens, values)
        source, speed = float(v0) / start.rate, (float(v1 - v0) / d if d > 0 else speed)
    elif found.retimed:
        source = source * speed
    key = (getattr(ref, "target_url", None) or getattr(ref, "name", None) or item.name or "") if ref is not None else item.name
    return ClipTiming(source, speed, media_end, str(key), handles or (0.0, 0.0), found.remap)


def _checked(path: Path, clip: RecordingClip, fps: float, tally: ImportTally) -> RecordingClip | None:
    """The clip as far as it can be mapped, or None (counted): a source range that runs backwards or
    starts before its media, a speed of 0 %, a source past its media's end (cut to the end)."""
    t, eps = clip.timing, 0.5 / fps
    if t.speed == 0:
        tally.counts["clips_zero_speed"] += 1
        log.warning("%s: a clip of the recording at timeline %.2f s plays at 0 %% speed (a freeze frame); it "
                    "lands on no recording frame", path, clip.start)
        return None
    if t.speed < 0 or clip.end <= clip.start or t.source_start < -eps:
        tally.counts["clips_bad_source_range"] += 1
        log.warning("%s: a clip of the recording at timeline %.2f s has a negative or reversed source range "
                    "(from %.2f s at speed %g); skipped", path, clip.start, t.source_start, t.speed)
        return None
    if t.speed != 1:
        tally.counts["speed_changes"] += int(clip.video)
    if t.time_remap:
        tally.counts["time_remaps"] += int(clip.video)
    if t.media_end is not None:
        source_end = t.source_start + (clip.end - clip.start) * t.speed
        if source_end > t.media_end + eps:
            tally.counts["clips_past_media_end"] += 1
            log.warning("%s: a clip of the recording at timeline %.2f s plays %.2f..%.2f s of media %.2f s long; "
                        "what lies past the media's end is skipped", path, clip.start, t.source_start, source_end,
                        t.media_end)
            if t.source_start >= t.media_end - eps:
                return None
            return replace(clip, end=clip.start + (t.media_end - t.source_start) / t.speed)
    return clip


def segments(path: Path, clips: list[RecordingClip], fps: float,
             tally: ImportTally) -> tuple[list[Segment], list[Segment], list[Segment], float]:
    """The recording's clips as (primary segments: video then audio; the video ones; handle segments) and the
    recording time its media reach (the media's length, else the end of the last used stretch).

    Clips of a second media named as the recording are counted (``recordings_claiming_id``) and
    left out: the first met in file order is the recording."""
    keys = list(dict.fromkeys(c.timing.media_key for c in clips))
    if len(keys) > 1:
        tally.counts["recordings_claiming_id"] = len(keys) - 1
        log.warning("%s: %d media claim to be the recording (%s); the first, '%s', is", path, len(keys),
                    ", ".join(f"'{k}'" for k in keys), keys[0])
    primary: list[Segment] = []
    pictures: list[Segment] = []
    handles: list[Segment] = []
    reach = 0.0
    for video in (True, False):
        for raw in sorted((c for c in clips if c.video == video and c.timing.media_key == keys[0]), key=lambda c: c.start):
            clip = _checked(path, raw, fps, tally)
            if clip is None:
                continue
            t = clip.timing
            seg = Segment(clip.start, clip.end - clip.start, t.source_start, t.speed)
            primary.append(seg)
            if video:
                pictures.append(seg)
            before, after = t.handles
            if before > 0 and t.source_start - before * t.speed >= -0.5 / fps:
                handles.append(Segment(clip.start - before, before, t.source_start - before * t.speed, t.speed))
            if after > 0 and (t.media_end is None or seg.source_end + after * t.speed <= t.media_end + 0.5 / fps):
                handles.append(Segment(clip.end, after, seg.source_end, t.speed))
            reach = max(reach, seg.source_end, t.media_end or 0.0)
    if not any(not c.video for c in clips):
        primary += _bridges(pictures, fps, tally)
    reach = max([reach] + [h.source_end for h in handles])
    return primary, pictures, handles, reach


def _bridges(pictures: list[Segment], fps: float, tally: ImportTally) -> list[Segment]:
    """Where a file carries no sound of the recording (an EDL), a cutaway between two of its clips
    that continue one another (the same offset and speed) was cut over the running recording:
    the gap plays it on. Counted in ``cutaways_bridged``."""
    out = []
    ordered = sorted(pictures, key=lambda s: s.timeline_start)
    for p, q in zip(ordered, ordered[1:]):
        gap = q.timeline_start - p.timeline_end
        if gap * fps > GRID_EPS and p.speed == q.speed and abs(q.source_start - p.source_end - gap * p.speed) * fps < 0.5:
            out.append(Segment(p.timeline_end, gap, p.source_end, p.speed))
    tally.counts["cutaways_bridged"] = len(out)
    return out


def _merged(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        elif b > a:
            out.append((a, b))
    return out


def used_frames(tmap: TimeMap, segs: list[Segment]) -> list[tuple[int, int]]:
    """The grid frames (merged ``[a, b)``, may fall outside the grid) that the segments play."""
    spans = []
    for s in segs:
        lo, hi = sorted((s.source_start, s.source_end))
        spans.append((tmap.first_frame_at(lo), tmap.first_frame_at(hi)))
    return [(int(a), int(b)) for a, b in _merged(spans)]


def count_uses(tmap: TimeMap, primary: list[Segment], video: list[Segment], length: float, tally: ImportTally) -> None:
    """Count what the map cannot make one-to-one: recording frames played at more than one timeline
    time (``recording_reused_frames``), clips from before an earlier clip's source
    (``recording_out_of_order_clips``) and timeline time where no part of the recording plays
    (``timeline_s_without_recording``, s). A clip's picture and sound at one time are one use."""
    uses: dict[tuple[int, float], list[Segment]] = defaultdict(list)
    # a clip's sound offset from its picture (a J or L cut) is not a second use: count the pictures' uses
    for s in (video or primary):
        uses[(round((s.timeline_start - s.source_start / s.speed) * tmap.fps), s.speed)].append(s)
    starts: list[tuple[float, float]] = []
    bounds: list[tuple[int, int]] = []
    for segs in uses.values():
        for a, b in used_frames(tmap, segs):
            bounds.append((a, b))
        first = min(segs, key=lambda s: s.timeline_start)
        starts.append((first.timeline_start, min(s.source_start for s in segs)))
    # frames played by more than one use: sweep the [a, b) ends
    events = sorted([(a, 1) for a, _ in bounds] + [(b, -1) for _, b in bounds])
    reused, depth, last = 0, 0, None
    for x, d in events:
        if last is not None and depth > 1:
            reused += (x - last) * (depth - 1)
        depth, last = depth + d, x
    tally.counts["recording_reused_frames"] = int(reused)
    out_of_order, furthest = 0, -math.inf
    for _, src in sorted(starts):
        if src < furthest - 0.5 / tmap.fps:
            out_of_order += 1
        furthest = max(furthest, src)
    tally.counts["recording_out_of_order_clips"] = out_of_order
    covered = sum(b - a for a, b in _merged([(max(s.timeline_start, 0.0), min(s.timeline_end, length)) for s in primary]))
    without = max(0.0, length - covered)
    tally.floats["timeline_s_without_recording"] = float(round(without, 6)) if without * tmap.fps > GRID_EPS else 0.0


def frame_timeline_times(tmap: TimeMap, n: int) -> np.ndarray:
    """(n,) timeline time at which each grid frame plays (its first use); NaN where it is dropped."""
    return np.asarray(tmap.timeline_time(tmap.frame_times(n)), dtype=np.float64)
