"""The one time map between a timeline and its recording (trackfusion.timemap)."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from trackfusion.timemap import Segment, TimeMap

fps_values = st.sampled_from([10.0, 24.0, 25.0, 30000 / 1001, 60.0])


@given(fps=fps_values, start=st.floats(0, 3600, allow_nan=False), n=st.integers(0, 500))
def test_frame_times_are_start_plus_i_over_fps_and_first_frame_at_inverts_them(fps, start, n):
    grid = TimeMap(fps, start)
    times = grid.frame_times(n)
    assert times.dtype == np.float64 and times.shape == (n,)
    np.testing.assert_array_equal(times, start + np.arange(n) / fps)
    assert [grid.first_frame_at(t) for t in times] == list(range(n))


@given(fps=fps_values, start=st.floats(0, 3600, allow_nan=False),
       times=st.lists(st.floats(-100, 4000, allow_nan=False), max_size=50))
def test_first_frames_at_is_first_frame_at_of_each_time(fps, start, times):
    grid = TimeMap(fps, start)
    frames = grid.first_frames_at(np.array(times))
    assert frames.dtype == np.int64 and frames.shape == (len(times),)
    assert frames.tolist() == [grid.first_frame_at(t) for t in times]


@given(fps=fps_values, first=st.floats(0, 1000, allow_nan=False), length=st.floats(0, 100, allow_nan=False))
def test_spanning_grid_sits_on_the_recordings_ticks_and_covers_the_span(fps, first, length):
    grid, n = TimeMap.spanning(fps, first, first + length)
    assert abs(grid.start_time * fps - round(grid.start_time * fps)) < 1e-6
    assert grid.start_time >= first - 1e-6 and grid.start_time - first < 1 / fps
    if n == 0:  # no tick inside a span shorter than one frame
        assert grid.start_time > first + length
        return
    last = grid.frame_times(n)[-1]
    assert last <= first + length + 1e-6 and first + length - last < 1 / fps


@st.composite
def jump_cut_maps(draw):
    """Segments back to back on the timeline, each from its own non-overlapping source stretch."""
    n = draw(st.integers(1, 6))
    sources = sorted(draw(st.lists(st.integers(0, 10_000), min_size=2 * n, max_size=2 * n, unique=True)))
    pieces = [(sources[2 * i], sources[2 * i + 1]) for i in range(n)]
    order = draw(st.permutations(range(n)))
    segments, t = [], 0.0
    for i in order:
        a, b = pieces[i]
        segments.append(Segment(t, (b - a) / 10, a / 10))
        t += (b - a) / 10
    return TimeMap(10.0, 0.0, tuple(segments))


@given(jump_cut_maps(), st.data())
def test_recording_and_timeline_time_invert_each_other_inside_segments(tmap, data):
    seg = data.draw(st.sampled_from(tmap.segments))
    u = data.draw(st.floats(0, 0.999))
    t = seg.timeline_start + u * seg.duration
    r = float(tmap.recording_time(t))
    assert math.isclose(r, seg.source_start + u * seg.duration, abs_tol=1e-9)
    assert math.isclose(float(tmap.timeline_time(r)), t, abs_tol=1e-9)


def test_time_outside_every_segment_plays_nothing_and_first_use_wins():
    tmap = TimeMap(10.0, 0.0, (Segment(0.0, 5.0, 100.0), Segment(5.0, 5.0, 100.0), Segment(12.0, 2.0, 50.0, 2.0)))
    assert np.isnan(tmap.recording_time(11.0))  # a gap on the timeline
    assert np.isnan(tmap.timeline_time(99.0))  # never played
    assert float(tmap.timeline_time(102.0)) == 2.0  # played twice: its first use
    assert float(tmap.recording_time(13.0)) == 52.0  # double speed
    assert float(tmap.timeline_time(52.0)) == 13.0


def test_an_offset_map_and_the_empty_map_are_uncut_edits():
    assert float(TimeMap.from_offset(10.0, 3.0, 7.5).recording_time(2.0)) == 9.5
    assert float(TimeMap.from_offset(10.0, 3.0, 7.5).timeline_time(9.5)) == 2.0
    assert float(TimeMap(10.0, 3.0).recording_time(2.0)) == 5.0


@given(fps=fps_values, start=st.floats(0, 3600, allow_nan=False), n=st.integers(1, 500))
def test_frame_time_is_the_grid_time_of_any_frame(fps, start, n):
    grid = TimeMap(fps, start)
    assert [grid.frame_time(i) for i in range(n)] == list(grid.frame_times(n))
    assert grid.frame_time(-3) == start - 3 / fps


def test_recording_frame_counts_recording_time_in_frames_of_the_grid():
    assert TimeMap(10.0, 4.0).recording_frame(3) == 43.0  # uncut: the grid's first frame plus the timeline's
    assert TimeMap(10.0, 0.5).recording_frame(0) == 5.0
    assert math.isclose(TimeMap.from_offset(10.0, 0.0, 7.5).recording_frame(20), 95.0)
    assert math.isclose(TimeMap(10.0, 0.0, (Segment(0.0, 5.0, 100.0),)).recording_frame(12), 1012.0)
    assert math.isnan(TimeMap(10.0, 0.0, (Segment(0.0, 5.0, 100.0),)).recording_frame(60))  # past the segment


def test_start_frame_is_the_grids_start_in_frames_sign_of_zero_included():
    assert TimeMap(10.0, 0.25).start_frame == 2.5
    assert math.copysign(1.0, TimeMap(10.0, -0.0).start_frame) == -1.0  # `trackfusion edit` exports from -0.0
