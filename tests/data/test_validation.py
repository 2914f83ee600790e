"""Validation of the raw corpus (trackfusion.data.validation): properties 15, 27, 28 and 29."""
from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackfusion import schema
from trackfusion.io.sequences import TrackSequenceError, write_sequences
from trackfusion.params import Params, params_from_dict
from trackfusion.data.validation import EPS_S, find_gaps, frame_coverage, validate_raw
from trackfusion.timemap import TimeMap
from tests.strategies.tracks import random_track
from tests.strategies.data_files import (
    RawVideo,
    audio_tables,
    capture_logs,
    make_audio_table,
    make_visual_table,
    raw_videos,
    sample_times,
    visual_tables,
    write_raw_dir,
)

PARAMS = Params()
VID = "bandicam 2025-03-11 22-57-01-575"


# --- slow references ------------------------------------------------------------


def ref_coverage_pct(start: float, n_frames: int, fps: float, samples: list[float], tol: float) -> float:
    """Frame by frame, sample by sample: frames with a sample within tol / all frames x 100."""
    covered = 0
    for i in range(n_frames):
        t = start + i / fps
        if any(abs(t - s) <= tol + EPS_S for s in samples):
            covered += 1
    return 100.0 * covered / n_frames


def ref_gaps(samples: list[float], max_gap: float) -> list[tuple[float, float]]:
    return [(a, b) for a, b in zip(samples, samples[1:]) if b - a > max_gap + EPS_S]


def video_entry(report: dict, vid: str) -> dict:
    (entry,) = [v for v in report["videos"] if v["video_id"] == vid]
    return entry


def _times(table) -> list[float]:
    return [float(t) for t in table["time"]]


# --- property 15 -----------------------------------------------------------------


@given(videos=raw_videos(min_videos=1, max_videos=3, max_frames=12, missing=True))
def test_property_15_missing_features_reported_with_id(videos: list[RawVideo]) -> None:
    with tempfile.TemporaryDirectory() as tmp, capture_logs("trackfusion") as records:
        report, markdown = validate_raw(write_raw_dir(Path(tmp), videos), PARAMS)
    for v in videos:
        entry = video_entry(report, v.video_id)
        for modality, table in (("audio", v.audio), ("visual", v.visual)):
            assert entry[modality]["present"] == (table is not None)
            if table is None:
                assert entry[modality]["coverage_pct"] == 0.0
                assert f"- `{v.video_id}`: no {modality} feature file" in markdown
                assert any(
                    getattr(r, "video_id", None) == v.video_id and modality in r.missing and v.video_id in r.getMessage()
                    for r in records if r.levelno == logging.WARNING
                )
    s = report["summary"]
    assert s["audio_missing"] == sum(v.audio is None for v in videos)
    assert s["visual_missing"] == sum(v.visual is None for v in videos)
    assert s["videos_without_features"] == sum(v.audio is None and v.visual is None for v in videos)


# --- property 27 -----------------------------------------------------------------


@given(
    samples=st.lists(st.floats(-2, 12, allow_nan=False), min_size=0, max_size=25, unique=True).map(sorted),
    start=st.floats(-1, 5, allow_nan=False),
    n_frames=st.integers(1, 40),
    fps=st.sampled_from([10, 12, 25]),
    tol=st.sampled_from([0.01, 0.05, 0.2]),
)
def test_property_27_coverage_percent(samples: list[float], start: float, n_frames: int, fps: int, tol: float) -> None:
    covered = frame_coverage(TimeMap(fps, start).frame_times(n_frames), np.array(samples, dtype=np.float64), tol)
    assert 100.0 * covered.sum() / n_frames == pytest.approx(ref_coverage_pct(start, n_frames, fps, samples, tol))


@given(videos=raw_videos(min_videos=1, max_videos=2, max_frames=25, missing=False, max_gaps=1))
def test_property_27_coverage_percent_in_report(videos: list[RawVideo]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        report, _ = validate_raw(write_raw_dir(Path(tmp), videos), PARAMS)
    fps, tol = PARAMS.data.fps, PARAMS.align.tolerance_s
    total = {"audio": 0.0, "visual": 0.0}
    for v in videos:
        entry = video_entry(report, v.video_id)
        n = len(v.track)
        for modality, table in (("audio", v.audio), ("visual", v.visual)):
            expected = ref_coverage_pct(v.start_time, n, fps, _times(table), tol)
            assert entry[modality]["coverage_pct"] == pytest.approx(expected)
            total[modality] += expected * n / 100
    frames = sum(len(v.track) for v in videos)
    assert report["summary"]["frames"] == frames
    for modality in total:
        assert report["summary"][f"{modality}_coverage_pct"] == pytest.approx(100 * total[modality] / frames, abs=1e-3)


# --- property 28 -----------------------------------------------------------------


@given(samples=sample_times(min_size=1, max_size=30, jitter_s=0.05, max_gaps=4, gap_range_s=(0.9, 7.0)))
def test_property_28_gaps_over_one_second_detected(samples: np.ndarray) -> None:
    found = [(g["start"], g["end"]) for g in find_gaps(samples, 1.0)]
    assert found == ref_gaps(samples.tolist(), 1.0)
    assert all(g["length_s"] > 1.0 for g in find_gaps(samples, 1.0))


@given(videos=raw_videos(min_videos=1, max_videos=2, max_frames=20, missing=False, max_gaps=2))
def test_property_28_gaps_in_report_and_warnings(videos: list[RawVideo]) -> None:
    with tempfile.TemporaryDirectory() as tmp, capture_logs("trackfusion.data.validation", logging.WARNING) as records:
        report, markdown = validate_raw(write_raw_dir(Path(tmp), videos), PARAMS)
    warnings = [r.getMessage() for r in records]
    n_gaps = 0
    for v in videos:
        entry = video_entry(report, v.video_id)
        for modality, table in (("audio", v.audio), ("visual", v.visual)):
            expected = ref_gaps(_times(table), PARAMS.align.max_interp_gap_s)
            got = [(g["start"], g["end"]) for g in entry[modality]["gaps"]]
            assert np.allclose(got, expected, rtol=0, atol=1e-12) and len(got) == len(expected)
            n_gaps += len(expected)
            for a, b in expected:
                assert f"- `{v.video_id}`: {modality} gap {a:.2f}-{b:.2f} s" in markdown
                warned = any(v.video_id in w and f"from {a:.2f} s to {b:.2f} s" in w and modality in w
                             for w in warnings)
                assert warned == (b - a > PARAMS.align.warn_gap_s)
    assert report["summary"]["audio_gaps"] + report["summary"]["visual_gaps"] == n_gaps


# --- property 29 -----------------------------------------------------------------

AUDIO_DROPPABLE = ["audio_energy_rms", "audio_is_speaking", "silence_duration_ms", "speaker_id", "text_is_active"]


@given(
    track_width=st.sampled_from([179, 180, 180, 181]),
    audio_drop=st.lists(st.sampled_from(AUDIO_DROPPABLE), max_size=2, unique=True),
    visual_drop=st.lists(st.sampled_from(["scene_change", "face_count", "clip_0", "clip_42", "clip_511"]),
                         max_size=3, unique=True),
    data=st.data(),
)
def test_property_29_dimensions_validated(
    track_width: int, audio_drop: list[str], visual_drop: list[str], data: st.DataObject
) -> None:
    n = data.draw(st.integers(1, 8))
    audio = data.draw(audio_tables(np.round(np.arange(n) / 10, 3))).drop(columns=audio_drop)
    visual = data.draw(visual_tables(np.round(np.arange(n) / 12, 3))).drop(columns=visual_drop)
    frames = np.pad(random_track(np.random.default_rng(0), n), ((0, 0), (0, 1)))[:, :track_width]  # 179, 180 or 181
    video = RawVideo(VID, 0.0, frames, audio, visual)
    with tempfile.TemporaryDirectory() as tmp:
        report, markdown = validate_raw(write_raw_dir(Path(tmp), [video]), PARAMS)
    entry = video_entry(report, VID)
    assert entry["track"]["dims"] == {"expected": 180, "found": track_width, "ok": track_width == 180}
    assert report["summary"]["track_dim_mismatches"] == int(track_width != 180)
    assert report["summary"]["broken_sequences"] == int(track_width != 180)
    if track_width != 180:
        assert "expected 180" in entry["track"]["error"]
        return
    for modality, dropped, width in (("audio", audio_drop, 5), ("visual", visual_drop, 522)):
        dims = entry[modality]["dims"]
        assert dims == {"expected": width, "found": width - len(dropped), "ok": not dropped}
        assert (entry[modality]["error"] is None) == (not dropped)
        if dropped:
            assert all(c in entry[modality]["error"] for c in dropped)
            assert f"{modality} file unreadable" in markdown


# --- examples -------------------------------------------------------------------


def _raw(tmp: Path, videos: list[RawVideo]) -> Path:
    return write_raw_dir(tmp / "raw", videos)


def _regular(n: int, step: float, start: float = 0.0) -> np.ndarray:
    return np.round(start + np.arange(n) * step, 3)


def test_broken_sequence_is_reported_and_counted(tmp_path: Path) -> None:
    broken = random_track(np.random.default_rng(0), 5)
    broken[2, 7] = np.nan
    videos = [RawVideo("good one", 0.0, random_track(np.random.default_rng(0), 10)), RawVideo("broken (1)", 0.0, broken)]
    report, markdown = validate_raw(_raw(tmp_path, videos), PARAMS)
    assert report["summary"]["broken_sequences"] == 1 and report["summary"]["videos_ok"] == 1
    assert report["summary"]["frames"] == 10
    assert "non-finite" in video_entry(report, "broken (1)")["track"]["error"]
    assert "`broken (1)`: track sequence broken" in markdown


def test_read_error_counted_and_other_modality_kept(tmp_path: Path) -> None:
    audio = make_audio_table(_regular(20, 0.1))
    visual = make_visual_table(_regular(24, 1 / 12))
    raw = _raw(tmp_path, [RawVideo(VID, 0.0, random_track(np.random.default_rng(0), 20), audio, visual)])
    (raw / "features" / schema.visual_file_name(VID)).write_text("time,scene_change\n0.0,abc\n")
    report, markdown = validate_raw(raw, PARAMS)
    e = video_entry(report, VID)
    assert e["visual"]["present"] and "clip_0" in e["visual"]["error"] and e["visual"]["coverage_pct"] == 0
    assert e["audio"]["error"] is None and e["audio"]["coverage_pct"] == 100.0
    assert report["summary"]["read_errors"] == 1 and report["summary"]["visual_read_errors"] == 1
    assert "visual file unreadable" in markdown


def test_late_start_early_end_order_and_nonfinite(tmp_path: Path) -> None:
    # track 0.0 .. 4.9 s; audio 1.0 .. 3.9 s with rows 2 and 3 swapped, the row of 1.5 s repeated at
    # the end (a second descent in time and a duplicate) and one empty value
    times = _regular(30, 0.1, start=1.0)
    audio = make_audio_table(times)
    audio.loc[3, "audio_energy_rms"] = np.nan
    audio = audio.iloc[[0, 2, 1, *range(3, 30), 5]]
    raw = _raw(tmp_path, [RawVideo(VID, 0.0, random_track(np.random.default_rng(0), 50), audio=audio)])
    with capture_logs("trackfusion", logging.WARNING) as records:
        report, _ = validate_raw(raw, PARAMS)
    a = video_entry(report, VID)["audio"]
    assert a["rows"] == 30 and a["unsorted_rows"] == 2 and a["duplicate_rows"] == 1 and not a["monotonic"]
    assert a["nonfinite"] == {"audio_energy_rms": 1}
    assert a["starts_late_s"] == pytest.approx(1.0) and a["ends_early_s"] == pytest.approx(1.0)
    assert a["coverage_pct"] == pytest.approx(60.0)
    assert any("out of time order" in r.getMessage() and VID in r.getMessage() for r in records)


def test_report_is_json_and_summary_flat(tmp_path: Path) -> None:
    videos = [RawVideo(VID, 0.5, random_track(np.random.default_rng(0), 15), make_audio_table(_regular(15, 0.1, 0.5)), None)]
    params = params_from_dict({"align": {"tolerance_s": 0.02}})
    report, markdown = validate_raw(_raw(tmp_path, videos), params)
    again = json.loads(json.dumps(report))
    assert again == report
    assert all(isinstance(v, (int, float)) for v in report["summary"].values())
    assert report["params"]["tolerance_s"] == 0.02
    assert markdown.startswith("# Raw data validation") and VID in markdown


def test_missing_sequences_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="sequences.npz"):
        validate_raw(tmp_path, PARAMS)


def test_a_corpus_of_no_videos_is_an_error_in_the_first_stage(tmp_path: Path) -> None:
    """Issue 12: 0 videos passed validate, align and normalize and was first caught in training."""
    write_sequences(tmp_path / schema.SEQUENCES_FILE, [])
    with pytest.raises(TrackSequenceError, match="holds no videos.*data.raw_dir"):
        validate_raw(tmp_path, PARAMS)


def test_gap_over_warn_limit_logged(tmp_path: Path) -> None:
    times = np.concatenate([_regular(10, 0.1), _regular(10, 0.1, start=7.0)])  # 0.9 -> 7.0: 6.1 s
    raw = _raw(tmp_path, [RawVideo(VID, 0.0, random_track(np.random.default_rng(0), 80), audio=make_audio_table(times))])
    with capture_logs("trackfusion.data.validation", logging.WARNING) as records:
        report, _ = validate_raw(raw, PARAMS)
    gaps = video_entry(report, VID)["audio"]["gaps"]
    assert gaps == [{"start": 0.9, "end": 7.0, "length_s": pytest.approx(6.1)}]
    assert report["summary"]["audio_gaps_over_warn"] == 1
    assert [r.getMessage() for r in records] == [f"video '{VID}': audio features have a 6.10 s gap from 0.90 s to 7.00 s"]


def test_validate_reports_the_kept_share_per_video_and_over_the_corpus(tmp_path: Path) -> None:
    """Issue 21: what an edit that removes keeps, per video, in the report and its table."""
    from tests.strategies.data_files import RawVideo

    cut = np.zeros((40, schema.TRACK_WIDTH), np.float32)
    cut[:10, 0] = 1.0  # the recording shown on its first 10 frames, the rest dropped
    kept = np.r_[np.ones(10), np.zeros(30)].astype(np.uint8)
    whole = np.zeros((20, schema.TRACK_WIDTH), np.float32)
    whole[:, 0] = 1.0
    raw = write_raw_dir(tmp_path / "raw", [RawVideo("highlights", 0.0, cut, kept=kept), RawVideo("uncut", 0.0, whole)])
    report, markdown = validate_raw(raw, PARAMS)
    by_id = {v["video_id"]: v for v in report["videos"]}
    assert by_id["highlights"]["kept_pct"] == 25.0 and by_id["highlights"]["kept_frames"] == 10
    assert by_id["uncut"]["kept_pct"] == 100.0
    assert report["summary"]["kept_pct"] == pytest.approx(100 * 30 / 60, abs=1e-4)
    assert "| highlights | 40 | 25.0 |" in markdown
