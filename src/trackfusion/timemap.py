"""Time between an edit's timeline and its recording: one object instead of an offset repeated.

Two clocks meet in this project. A recording's track frames sit on its own clock: frame
``i`` is recording time ``start_time + i / fps`` (the contract of ``sequences.npz``). An
edit's timeline has another clock: each stretch of it plays the recording from some
source point. :class:`TimeMap` holds both: the frame grid (``fps``, ``start_time``) and
the :class:`Segment` list, and answers recording time for timeline time and back.
Import, export, building the corpus, validation and ``trackfusion edit`` go through it,
so a jump cut (a second segment with its own source point) changes the map, not them.

A map with no segments is the identity on the grid: timeline time ``t`` is recording
time ``start_time + t`` (the edit plays the recording from its first frame, uncut).
It sits at the top level, below ``io``, so every layer may use it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

# Float fuzz on the frame grid: times are computed as start + i / fps, so a time that is
# exactly on frame i may come out a few ulps below it.
GRID_EPS = 1e-6


@dataclass(frozen=True)
class Segment:
    """A stretch of the timeline, ``[timeline_start, timeline_start + duration)``, that plays
    the recording from ``source_start`` (recording seconds) at ``speed`` (1 = real time)."""

    timeline_start: float
    duration: float
    source_start: float
    speed: float = 1.0

    @property
    def timeline_end(self) -> float:
        return math.inf if math.isinf(self.duration) else self.timeline_start + self.duration

    @property
    def source_end(self) -> float:
        return self.source_start + self.duration * self.speed


@dataclass(frozen=True)
class TimeMap:
    """The frame grid of a recording and the timeline segments that play it."""

    fps: float
    start_time: float = 0.0
    segments: tuple[Segment, ...] = ()

    @classmethod
    def from_offset(cls, fps: float, start_time: float, offset: float) -> "TimeMap":
        """One unbounded segment: recording time = timeline time + ``offset`` (an uncut edit)."""
        return cls(fps, start_time, (Segment(-math.inf, math.inf, offset),))

    # --- the frame grid ----------------------------------------------------------------
    def frame_times(self, n_frames: int) -> np.ndarray:
        """(T,) float64 recording times of frames ``0 .. n_frames - 1``: ``start_time + i / fps``."""
        return self.start_time + np.arange(n_frames, dtype=np.float64) / self.fps

    @property
    def start_frame(self) -> float:
        """The grid's first frame counted in frames at ``fps`` from recording time 0 (fractional
        where the grid is off the recording's ``1/fps`` ticks)."""
        return self.start_time * self.fps

    def frame_time(self, frame: int) -> float:
        """Recording time of frame ``frame`` (any integer, negative too): ``start_time + frame / fps``."""
        return self.start_time + frame / self.fps

    def first_frame_at(self, recording_s: float) -> int:
        """Index of the first frame at or after recording time ``recording_s`` (may be negative)."""
        return math.ceil((recording_s - self.start_time) * self.fps - GRID_EPS)

    def first_frames_at(self, recording_s: np.ndarray) -> np.ndarray:
        """(N,) int64 :meth:`first_frame_at` of many recording times at once (the same float steps)."""
        return np.ceil((np.asarray(recording_s, np.float64) - self.start_time) * self.fps - GRID_EPS).astype(np.int64)

    @classmethod
    def spanning(cls, fps: float, first_s: float, last_s: float) -> tuple["TimeMap", int]:
        """The grid on the recording's own ``1/fps`` ticks that covers ``[first_s, last_s]`` and its
        frame count: the first frame is the first tick at or after ``first_s``."""
        start = math.ceil(first_s * fps - GRID_EPS) / fps
        return cls(float(fps), start), int(math.floor((last_s - start) * fps + GRID_EPS)) + 1

    # --- timeline <-> recording ------------------------------------------------------------
    def recording_time(self, timeline_s: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """Recording time shown at each timeline time; NaN where no segment plays the recording.
        Where segments overlap, the first listed wins."""
        t = np.asarray(timeline_s, dtype=np.float64)
        if not self.segments:
            return self.start_time + t
        out = np.full(t.shape, np.nan)
        free = np.ones(t.shape, bool)
        for seg in self.segments:
            inside = free & (t >= seg.timeline_start) & (t < seg.timeline_end)
            if math.isinf(seg.timeline_start):  # an unbounded segment: no multiply of inf by 0
                out[inside] = t[inside] + seg.source_start
            else:
                out[inside] = seg.source_start + (t[inside] - seg.timeline_start) * seg.speed
            free &= ~inside
        return out

    def recording_frame(self, timeline_frame: float) -> float:
        """Recording time, counted in frames at ``fps`` from recording time 0, shown at timeline frame
        ``timeline_frame`` (timeline time ``timeline_frame / fps``): an export's source points, whole
        frames where the grid starts on a frame, with no round trip through seconds."""
        if not self.segments:
            return self.start_frame + timeline_frame
        return float(self.recording_time(timeline_frame / self.fps)) * self.fps

    def timeline_time(self, recording_s: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """Timeline time at which each recording time plays; NaN where the edit does not play it.
        A stretch used twice answers with its first use in timeline order. Segment ends are
        compared within ``GRID_EPS`` of a frame, so a frame on a cut is not lost to float fuzz."""
        r = np.asarray(recording_s, dtype=np.float64)
        if not self.segments:
            return r - self.start_time
        eps = GRID_EPS / self.fps
        out = np.full(r.shape, np.nan)
        ordered = r.ndim == 1 and bool(np.all(np.diff(r) >= 0))
        for seg in sorted(self.segments, key=lambda s: s.timeline_start):
            if math.isinf(seg.timeline_start):
                inside = np.isnan(out)
                out[inside] = r[inside] - seg.source_start
                continue
            if not seg.speed:
                continue
            lo, hi = sorted((seg.source_start, seg.source_end))
            if ordered:  # a frame grid: each segment touches only its own stretch (an edit of hundreds of clips)
                i0, i1 = np.searchsorted(r, [lo - eps, hi - eps])
                part, rs = out[i0:i1], r[i0:i1]
                free = np.isnan(part)
                part[free] = seg.timeline_start + (rs[free] - seg.source_start) / seg.speed
                continue
            inside = np.isnan(out) & (r >= lo - eps) & (r < hi - eps)
            out[inside] = seg.timeline_start + (r[inside] - seg.source_start) / seg.speed
        return out
