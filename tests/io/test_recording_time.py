"""The recording's clips -> one TimeMap (io.timeline.recording_time), on its own: the map import
samples through and export writes from."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trackfusion.io.timeline.recording_time import ClipTiming, RecordingClip, count_uses, segments
from trackfusion.io.timeline.records import ImportTally
from trackfusion.io.timeline.writing import jump_cut_map
from trackfusion.timemap import TimeMap


def rec(start: float, end: float, source: float, video: bool = True, **timing) -> RecordingClip:
    return RecordingClip(start, end, ClipTiming(source, media_key="rec.mp4", **timing), video)


def test_each_clip_is_a_segment_with_its_own_source_and_the_picture_wins_over_the_sound():
    tally = ImportTally()
    clips = [rec(0, 30, 10), rec(30, 60, 100), rec(0, 60, 500, video=False)]  # sound from elsewhere under both
    primary, pictures, handles, reach = segments(Path("t"), clips, 10.0, tally)
    tmap = TimeMap(10.0, 0.0, tuple(primary + handles))
    assert tmap.recording_time([5.0, 35.0]).tolist() == [15.0, 105.0]  # the pictures'
    assert float(tmap.timeline_time(520.0)) == 20.0  # the sound's stretch plays too, under the picture
    assert reach == 560.0 and len(pictures) == 2


def test_transition_handles_play_the_media_around_the_cut_and_count_as_no_second_use():
    tally = ImportTally()
    clips = [rec(0, 10, 100, handles=(0.0, 1.0)), rec(10, 20, 300, handles=(1.0, 0.0))]
    primary, _, handles, _ = segments(Path("t"), clips, 10.0, tally)
    tmap = TimeMap(10.0, 0.0, tuple(primary + handles))
    assert float(tmap.timeline_time(110.5)) == pytest.approx(10.5)  # the outgoing clip's tail
    assert float(tmap.timeline_time(299.5)) == pytest.approx(9.5)  # the incoming clip's head
    assert float(tmap.recording_time(10.5)) == pytest.approx(300.5)  # the cut point decides what shows
    count_uses(tmap, primary, primary, 20.0, tally)
    assert tally.counts["recording_reused_frames"] == 0


def test_a_frame_on_a_cut_belongs_to_the_clip_after_it_despite_float_fuzz():
    fps = 30000 / 1001
    tmap = jump_cut_map(fps, 0.0, [(0, 7), (50, 53)])
    times = tmap.timeline_time(tmap.frame_times(60))
    assert np.isfinite(times).sum() == 10 and times[50] == pytest.approx(7 / fps)


def test_the_export_map_is_the_kept_runs_back_to_back():
    tmap = jump_cut_map(10.0, 2.0, [(0, 10), (20, 25), (30, 40)])
    assert tmap.recording_time([0.0, 1.0, 1.5]).tolist() == [2.0, 4.0, 5.0]
    assert np.isnan(tmap.timeline_time(3.5))  # dropped
