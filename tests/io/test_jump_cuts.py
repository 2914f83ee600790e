"""Issue 21: jump cuts. Timelines built here with OpenTimelineIO, written as .otio and as FCP 7
XML (the fcp_xml adapter), the real broadcast exports in tests/io/timelines, and the round trip
of an export that drops frames."""
from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies.tracks import timelines
from trackfusion import schema
from trackfusion.io.timeline import TimelineError, export_timeline, import_timeline

P = schema.NUM_TRACK_PARAMS
ACTIVE = schema.track_columns("active")
ASSET = schema.track_columns("asset_id")
RATE = 30  # the files' rate; frames at schema.FPS (10)
REC = "rec"
HERE = Path(__file__).parent / "timelines"


def rt(seconds: float) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(round(seconds * RATE), RATE)


def clip(name: str, source_s: float, duration_s: float, media_s: float | None = None, url: str | None = None,
         effects: list | None = None) -> otio.schema.Clip:
    available = otio.opentime.TimeRange(rt(0), rt(3600 if media_s is None else media_s))  # the fcp_xml adapter needs one
    ref = otio.schema.ExternalReference(target_url=url or f"{name}.mp4", available_range=available)
    ref.name = name
    c = otio.schema.Clip(name=name, media_reference=ref, source_range=otio.opentime.TimeRange(rt(source_s), rt(duration_s)))
    c.effects.extend(effects or [])
    return c


def gap(duration_s: float) -> otio.schema.Gap:
    return otio.schema.Gap(source_range=otio.opentime.TimeRange(rt(0), rt(duration_s)))


def track(kind: str, *items: otio.core.Item) -> otio.schema.Track:
    t = otio.schema.Track(kind=kind)
    t.extend(items)
    return t


def video(*items: otio.core.Item) -> otio.schema.Track:
    return track(otio.schema.TrackKind.Video, *items)


def audio(*items: otio.core.Item) -> otio.schema.Track:
    return track(otio.schema.TrackKind.Audio, *items)


def write(tmp_path: Path, name: str, *tracks: otio.schema.Track) -> Path:
    tl = otio.schema.Timeline(name=Path(name).stem)
    tl.tracks.extend(tracks)
    path = tmp_path / name
    otio.adapters.write_to_file(tl, str(path), adapter_name="fcp_xml" if path.suffix == ".xml" else "otio_json")
    return path


def frames_of(*ranges_s: tuple[float, float]) -> set[int]:
    return {j for a, b in ranges_s for j in range(round(a * schema.FPS), round(b * schema.FPS))}


def kept_set(got) -> set[int]:
    return set((np.flatnonzero(got.kept) + round(got.start_time * got.fps)).tolist())


def assert_within_a_frame(got_set: set[int], expected: set[int]) -> None:
    """Equal, but for at most one frame at each boundary of a run."""
    diff = got_set ^ expected
    edges = {j + d for j in expected for d in (-1, 0, 1) if j - 1 not in expected or j + 1 not in expected}
    assert diff <= edges, sorted(diff - edges)[:10]


# --------------------------------------------------------------------------- the four highlights

HIGHLIGHTS = [(10, 40), (100, 130), (300, 360), (500, 520)]  # recording s, placed back to back


@pytest.mark.parametrize("suffix", [".otio", ".xml"])
def test_four_highlights_of_a_ten_minute_recording_keep_exactly_their_frames(tmp_path, suffix):
    """The issue's case: before, the main track was active over recording 10-150 s as one block,
    the face cam on 45-55 s, and only main_clips_off_grid: 3 said so."""
    mains = [clip(REC, a, b - a, media_s=600) for a, b in HIGHLIGHTS]
    sounds = [clip(REC, a, b - a, media_s=600) for a, b in HIGHLIGHTS]
    face = video(gap(35), clip("facecam", 0, 10))  # over the second highlight, 5 s into it
    path = write(tmp_path, f"edit{suffix}", video(*mains), face, audio(*sounds))
    got = import_timeline(path, main_media=REC)
    assert got.start_time == 0.0 and len(got.frames) == 6000  # the whole recording, as far as its media reach
    expected = frames_of(*HIGHLIGHTS)
    assert_within_a_frame(kept_set(got), expected)
    assert kept_set(got) == expected  # on the frame grid exactly
    assert (got.frames[got.kept == 0] == 0).all() and got.kept.dtype == np.uint8
    assert (got.frames[got.kept == 1, 0] == 1).all() and (got.frames[got.kept == 1, 1] == 0).all()
    face_on = set(np.flatnonzero(got.frames[:, P]).tolist())
    assert face_on == frames_of((105, 115))
    assert got.frames[1100, P + 1] == 1  # a face cam
    r = got.report
    assert "main_clips_off_grid" not in r
    assert (r["recording_reused_frames"], r["recording_out_of_order_clips"], r["timeline_s_without_recording"]) == (0, 0, 0.0)
    assert isinstance(r["timeline_s_without_recording"], float) and r["time_base"] == "main_clip"


# --------------------------------------------------------------------------- what plays where


@pytest.mark.parametrize("suffix", [".otio", ".xml"])
def test_a_title_over_the_recordings_sound_is_kept_with_the_title(tmp_path, suffix):
    """The picture cuts to a title for 10-15 s; the recording's sound runs on under it."""
    path = write(tmp_path, f"t{suffix}", video(clip(REC, 0, 10, 20), clip("Title 01", 0, 5), clip(REC, 15, 5, 20)),
                 audio(clip(REC, 0, 20, 20)))
    got = import_timeline(path, main_media=REC)
    assert kept_set(got) == frames_of((0, 20))
    assert (got.frames[100:150, 1] == 2).all() and (got.frames[:100, 1] == 0).all()  # the title's class
    assert got.report["timeline_s_without_recording"] == 0.0


@pytest.mark.parametrize("suffix", [".otio", ".xml"])
def test_a_title_card_where_nothing_of_the_recording_plays_lands_on_no_frame(tmp_path, suffix):
    path = write(tmp_path, f"t{suffix}", video(clip("Title 01", 0, 5), clip(REC, 30, 10, 60)))
    got = import_timeline(path, main_media=REC)
    assert kept_set(got) == frames_of((30, 40)) and len(got.frames) == 600
    assert got.report["timeline_s_without_recording"] == pytest.approx(5.0)
    assert not (got.frames[:, 1] == 2).any() and got.report["clips_on_no_kept_frame"] == 1


@pytest.mark.parametrize("suffix", [".otio", ".xml"])
def test_a_stretch_used_twice_and_one_out_of_order_are_counted_and_the_first_use_wins(tmp_path, suffix):
    """Recording 20-30 s, then 0-10 s (out of order), then 25-35 s (25-30 s a second time). A face
    cam over the second use of 27-29 s does not reach those frames: their first use had none."""
    mains = video(clip(REC, 20, 10, 60), clip(REC, 0, 10, 60), clip(REC, 25, 10, 60))
    face = video(gap(22), clip("facecam", 0, 2))
    got = import_timeline(write(tmp_path, f"u{suffix}", mains, face), main_media=REC)
    assert kept_set(got) == frames_of((0, 10), (20, 35))  # 10-20 s never plays
    assert got.report["recording_out_of_order_clips"] == 1 and got.report["recording_reused_frames"] == 50
    # timeline 22-24 s plays recording 27-29 s, first played at timeline 7-9 s, with no face cam
    assert not got.frames[:, P].any() and got.report["clips_on_no_kept_frame"] == 1


def test_speed_changes_map_linearly_and_time_remaps_are_counted(tmp_path):
    fast = clip(REC, 0, 10, 60, effects=[otio.schema.LinearTimeWarp(time_scalar=2.0)])
    remap = clip(REC, 40, 5, 60, effects=[otio.schema.TimeEffect(name="remap", effect_name="TimeRemap")])
    got = import_timeline(write(tmp_path, "s.otio", video(fast, remap)), main_media=REC)
    assert kept_set(got) == frames_of((0, 20), (40, 45))  # 10 s of timeline play 20 s of recording
    assert (got.report["speed_changes"], got.report["time_remaps"]) == (1, 1)


# --------------------------------------------------------------------------- bad input


def test_bad_clips_of_the_recording_are_counted_and_the_rest_of_the_edit_is_kept(tmp_path, caplog):
    good = clip(REC, 100, 10)
    negative = clip(REC, -5, 3)
    backwards = clip(REC, 50, 3, effects=[otio.schema.LinearTimeWarp(time_scalar=-1.0)])
    frozen = clip(REC, 60, 3, effects=[otio.schema.FreezeFrame()])
    got = import_timeline(write(tmp_path, "b.otio", video(negative, backwards, frozen, good)), main_media=REC)
    assert kept_set(got) == frames_of((100, 110))
    assert (got.report["clips_bad_source_range"], got.report["clips_zero_speed"]) == (2, 1)
    assert got.report["timeline_s_without_recording"] == pytest.approx(9.0)
    assert "negative or reversed source range" in caplog.text and "0 % speed" in caplog.text


def test_a_clip_past_its_medias_end_is_counted_and_cut_there(tmp_path, caplog):
    tracks = video(clip(REC, 0, 5, 60), clip(REC, 58, 5, 60), clip(REC, 70, 5, 60))
    got = import_timeline(write(tmp_path, "p.xml", tracks), main_media=REC)
    assert got.report["clips_past_media_end"] == 2 and kept_set(got) == frames_of((0, 5), (58, 60))
    assert len(got.frames) == 600 and "past the media's end is skipped" in caplog.text


def test_two_recordings_claiming_the_video_id_keep_the_first(tmp_path):
    first, second = clip(REC, 0, 5, url="a/rec.mp4"), clip(REC, 30, 5, url="b/rec.mov")
    got = import_timeline(write(tmp_path, "two.otio", video(first, second)), main_media=REC)
    assert got.report["recordings_claiming_id"] == 1 and kept_set(got) == frames_of((0, 5))


def test_an_edit_mapping_more_than_a_day_of_recording_is_refused(tmp_path):
    path = write(tmp_path, "day.otio", video(clip(REC, 0, 5, 26 * 3600), clip(REC, 25 * 3600, 5, 26 * 3600)))
    with pytest.raises(TimelineError, match="hours"):
        import_timeline(path, main_media=REC)


# --------------------------------------------------------------------------- real broadcast exports

#: file -> the source recording SOURCES.md names (BSD-3-Clause, see SOURCES.md)
REAL = {"msub20000112-knut.xml": "msub200012-2511-001.mxf", "60_sek_Jokulhlup.xml": "AA297401.MXF",
        "UA4-konsulentteam-CC.xml": "ua4-171215-k1r-045.MXF"}


def _media_frames(item: ET.Element, a: int, b: int) -> range:
    """The media frames a clip item's ``[in, out)`` plays. With FCP's Time Remap filter in/out count
    the retimed clip (one per timeline frame): its ``graphdict`` keyframes map them to media frames."""
    for effect in item.iter("effect"):
        if (effect.findtext("effectid") or "").lower() != "timeremap":
            continue
        for param in effect.iter("parameter"):
            if param.findtext("parameterid") == "graphdict":
                keys = sorted((float(k.findtext("when")), float(k.findtext("value"))) for k in param.iter("keyframe"))
                lo, hi = np.interp([a, b], [w for w, _ in keys], [v for _, v in keys])
                return range(int(np.ceil(lo - 1e-6)), int(np.ceil(hi - 1e-6)))
    return range(a, b)


def source_ranges(path: Path, source: str) -> tuple[set[int], float]:
    """The union of the source's clip items' ``[in, out)`` (video and audio), in frames of the
    sequence's rate, read with xml.etree alone (not the adapter), and that rate. SOURCES.md says
    ``[in, out)``; two clips of msub20000112-knut.xml are retimed (12 % and 50 %), where in/out
    count the retimed clip (31166..31318 of a file 27694 frames long), so their media frames come
    from the Time Remap filter's own keyframes."""
    root = ET.fromstring(path.read_bytes())
    seq = root.find(".//sequence")
    names = {f.get("id"): f.findtext("name") for f in root.iter("file") if f.get("id") and f.findtext("name")}
    frames: set[int] = set()
    for item in seq.iter("clipitem"):
        ref = item.find("file")
        if ref is not None and names.get(ref.get("id")) == source:
            frames.update(_media_frames(item, int(item.findtext("in")), int(item.findtext("out"))))
    return frames, float(seq.findtext("rate/timebase"))


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_exports_keep_the_union_of_the_sources_clip_ranges(name):
    """Before issue 21 the frames active on the main track overlapped these by 9-17 % (IoU)."""
    path = HERE / name
    expected, rate = source_ranges(path, REAL[name])
    got = import_timeline(path, fps=rate, main_media=Path(REAL[name]).stem)
    assert got.start_time == 0.0
    assert set(np.flatnonzero(got.kept).tolist()) == expected
    assert (got.frames[got.kept == 0] == 0).all()
    assert got.report["clips_past_media_end"] == 0  # the retimed clips read right stay inside the file


def test_the_real_exports_licence_note_travels_with_them():
    note = (HERE / "SOURCES.md").read_text(encoding="utf-8")
    assert "BSD-3-Clause" in note and all(name in note for name in REAL)


# --------------------------------------------------------------------------- export of kept frames


def _edit(n: int = 40) -> np.ndarray:
    frames = np.zeros((n, schema.TRACK_WIDTH), np.float32)
    frames[:, :P] = [1, 0, 100, 960, 540, 0, 0, 0, 0]
    frames[5:25, P:2 * P] = [1, 1, 40, 1536, 270, 10, 5, 0, 0]
    return frames


@pytest.mark.parametrize("suffix", [".otio", ".xml"])
def test_dropped_frames_export_as_jump_cuts_each_its_own_clip_with_its_sound(tmp_path, suffix):
    frames = _edit()
    kept = np.zeros(40, np.uint8)
    kept[0:10] = kept[20:25] = kept[30:40] = 1
    frames[kept == 0] = 0
    report = export_timeline(frames, tmp_path / f"e{suffix}", start_time=2.0, media_names={0: REC}, kept=kept)
    assert report["jump_cuts"] == 2 and report["edit_frames"] == 25
    tl = otio.adapters.read_from_file(str(tmp_path / f"e{suffix}"))
    mains = [c for c in tl.video_tracks()[0].find_clips()]
    sources = [(c.source_range.start_time.to_seconds(), c.source_range.duration.to_seconds()) for c in mains]
    assert sources == [(2.0, 1.0), (4.0, 0.5), (5.0, 1.0)]  # recording in-points: jump cuts
    sound = [(c.source_range.start_time.to_seconds(), c.source_range.duration.to_seconds())
             for c in tl.audio_tracks()[0].find_clips()]
    assert sound == sources
    back = import_timeline(tmp_path / f"e{suffix}", main_media=REC)
    j0 = round((2.0 - back.start_time) * schema.FPS)
    np.testing.assert_array_equal(back.kept[j0:j0 + 40], kept)
    np.testing.assert_allclose(back.frames[j0:j0 + 40], frames, atol=1e-3)


def test_an_export_of_nothing_kept_is_an_error(tmp_path):
    with pytest.raises(TimelineError, match="no frame is kept"):
        export_timeline(_edit(), tmp_path / "e.otio", kept=np.zeros(40))


@st.composite
def kept_patterns(draw):
    """Frames and start time from the project's strategy, and a kept mask of runs: runs of one
    frame, and a kept run at either end, come up."""
    frames, start_time = draw(timelines(max_tracks=2, max_frames=30))
    T = len(frames)
    mask = np.array(draw(st.lists(st.booleans(), min_size=T, max_size=T)), np.uint8)
    if draw(st.booleans()):
        mask[0] = 1
    if draw(st.booleans()):
        mask[-1] = 1
    if not (frames[mask == 1][:, ACTIVE]).any():  # an edit with no clip at all is no timeline
        mask[draw(st.sampled_from(np.flatnonzero(frames[:, ACTIVE].any(axis=1)).tolist()))] = 1
    frames = frames.copy()
    frames[mask == 0] = 0
    return frames, start_time, mask


@pytest.mark.parametrize("suffix", [".otio", ".xml"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=kept_patterns())
def test_import_of_an_export_gives_back_the_kept_frames_and_layout(suffix, case):
    """The .otio carries our grid (metadata start_time, frames). FCP XML carries no metadata, so its
    frames run from recording 0 to the media's end: compare from the export's first frame. The
    adapter drops trailing gaps of video tracks, but the recording's sound is cut with every kept
    run, so every kept frame and its layout still come back."""
    frames, start_time, kept = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"edit{suffix}"
        export_timeline(frames, path, start_time=start_time, kept=kept)
        back = import_timeline(path)
    j0 = round((start_time - back.start_time) * schema.FPS)
    assert back.start_time == pytest.approx(start_time if suffix == ".otio" else 0.0, abs=1e-9)
    assert len(back.frames) == j0 + len(frames) and not back.kept[:j0].any()
    np.testing.assert_array_equal(back.kept[j0:], kept)
    np.testing.assert_array_equal(back.frames[j0:, ACTIVE], frames[:, ACTIVE])
    np.testing.assert_array_equal(back.frames[j0:, ASSET], frames[:, ASSET])
    np.testing.assert_allclose(back.frames[j0:], frames, atol=1e-3)


def test_fcp_time_remap_filters_map_a_constant_speed_and_count_a_varying_one(tmp_path):
    def remap(**params: str) -> otio.schema.Effect:
        return otio.schema.Effect(name="Time Remap", metadata={"fcp_xml": {"effectid": "timeremap", "parameter": [
            {"parameterid": k, "value": v} for k, v in params.items()]}})

    half = clip(REC, 0, 10, 60, effects=[remap(variablespeed="0", speed="50")])
    varying = clip(REC, 40, 5, 60, effects=[remap(variablespeed="1", speed="100")])
    got = import_timeline(write(tmp_path, "r.otio", video(half, varying)), main_media=REC)
    assert kept_set(got) == frames_of((0, 5), (40, 45))  # 10 s at 50 % play 5 s of the recording
    assert (got.report["speed_changes"], got.report["time_remaps"]) == (1, 1)


@pytest.mark.parametrize("suffix", [".otio", ".xml", ".edl"])
def test_an_export_with_every_frame_kept_is_the_export_without_kept_byte_for_byte(tmp_path, suffix):
    frames = _edit()
    if suffix == ".edl":
        frames[:, P:] = 0
    export_timeline(frames, tmp_path / f"a{suffix}", start_time=1.3, media_names={0: REC})
    export_timeline(frames, tmp_path / f"b{suffix}", start_time=1.3, media_names={0: REC}, kept=np.ones(40, np.uint8))
    assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()


def test_an_fcp_clip_item_written_as_a_reference_to_an_equal_one_is_read(tmp_path):
    """Found by the round-trip property: the fcp_xml adapter writes a clip equal to an earlier one
    (the recording on two tracks at once) as ``<clipitem id="clipitem-1"/>``, which the importer
    dropped as an unsupported item."""
    frames = np.zeros((2, schema.TRACK_WIDTH), np.float32)
    frames[0, :P] = frames[0, P:2 * P] = [1, 0, 100, 960, 540, 0, 0, 0, 0]
    export_timeline(frames, tmp_path / "e.xml")
    assert '<clipitem id="clipitem-1"/>' in (tmp_path / "e.xml").read_text(encoding="utf-8")
    back = import_timeline(tmp_path / "e.xml")
    np.testing.assert_array_equal(back.frames[:, ACTIVE], frames[:, ACTIVE])
    assert back.report.get("unsupported_clips_skipped", 0) == 0
