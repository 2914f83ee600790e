"""Ingest: a folder of edits and feature tables becomes a raw corpus (SPEC section 3)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trackfusion import schema
from trackfusion.cli import build_parser
from trackfusion.data.ingest import IngestError, ingest_timelines, main, run
from trackfusion.io.sequences import SequenceReader
from trackfusion.params import Params
from trackfusion.io.timeline import export_timeline

P = schema.NUM_TRACK_PARAMS
ROOT = Path(__file__).resolve().parents[2]


def _frames(n: int, face_from: int) -> np.ndarray:
    frames = np.zeros((n, schema.TRACK_WIDTH), np.float32)
    frames[:, :P] = [1, 0, 100, 960, 540, 0, 0, 0, 0]
    frames[face_from:n, P:2 * P] = [1, 1, 35, 1640, 840, 5, 5, 0, 0]
    return frames


@pytest.fixture
def edits(tmp_path: Path) -> dict:
    """Three edited videos (.otio, .xml, .edl), a broken timeline, a stray file, features."""
    timelines, features = tmp_path / "timelines", tmp_path / "features"
    timelines.mkdir()
    features.mkdir()
    videos = {
        "bandicam 2025-03-11 22-57-01-575": (_frames(40, 10), 3.0, ".otio"),
        "game, part 2 (final)": (_frames(25, 5), 0.0, ".xml"),
        "solo": (_frames(15, 15), 1.5, ".edl"),  # face_from == n: one track only, as an EDL needs
    }
    for vid, (frames, start, ext) in videos.items():
        export_timeline(frames, timelines / f"{vid}{ext}", start_time=start, media_names={0: f"{vid}.mp4"})
        (features / schema.audio_file_name(vid)).write_text("time,audio_energy_rms\n0.0,0.1\n", encoding="utf-8")
        if vid != "solo":
            (features / schema.visual_file_name(vid)).write_text("time,scene_change\n0.0,0\n", encoding="utf-8")
    (timelines / "broken.xml").write_text("<xmeml><sequence><media>", encoding="utf-8")
    (timelines / "notes.txt").write_text("not a timeline", encoding="utf-8")
    return {"timelines": timelines, "features": features, "out": tmp_path / "raw", "videos": videos}


def test_ingest_builds_a_raw_corpus_and_skips_a_broken_timeline(edits):
    summary = ingest_timelines(edits["timelines"], edits["features"], edits["out"], Params())
    assert (summary["timelines_found"], summary["imported"], summary["failed"]) == (4, 3, 1)
    assert summary["failures"][0]["file"].endswith("broken.xml") and "broken.xml" in summary["failures"][0]["error"]
    assert (summary["audio_files"], summary["visual_files"], summary["missing_visual"]) == (3, 2, ["solo"])

    reader = SequenceReader(edits["out"] / schema.SEQUENCES_FILE)
    assert sorted(reader.video_ids) == sorted(edits["videos"])
    for vid, (frames, start, _) in edits["videos"].items():
        # the frames cover the recording (from its time 0 where the file has no grid of ours);
        # the frames the edit plays are kept, and they are the exported ones
        got = reader.track(vid)
        played = np.flatnonzero(got.kept_flags)
        assert len(played) == len(frames) and np.all(np.diff(played) == 1)
        assert got.start_time + played[0] / schema.FPS == pytest.approx(start)
        # .otio and .xml carry every parameter; the EDL's one track holds the defaults, as here
        np.testing.assert_allclose(got.frames[played], frames, atol=1e-3)
        assert not got.frames[got.kept_flags == 0].any()
    assert summary["frames"] == sum(len(reader.read(v)) for v in reader.video_ids)
    names = sorted(p.name for p in (edits["out"] / schema.FEATURES_DIR).iterdir())
    assert names == sorted(
        [schema.audio_file_name(v) for v in edits["videos"]]
        + [schema.visual_file_name(v) for v in edits["videos"] if v != "solo"]
    )
    copied = edits["out"] / schema.FEATURES_DIR / schema.audio_file_name("solo")
    assert copied.read_text(encoding="utf-8") == (edits["features"] / schema.audio_file_name("solo")).read_text(encoding="utf-8")


@pytest.mark.parametrize("where", ["parent", "timelines", "features", "unrelated"])
def test_ingest_never_replaces_a_folder_holding_its_inputs_or_other_files(edits, tmp_path, where):
    """Issue 12: `--out` a folder holding the timelines and features exited 0 having deleted
    the timelines, an unrelated CSV and a NOTES.txt."""
    out = {"parent": tmp_path, "timelines": edits["timelines"], "features": edits["features"],
           "unrelated": tmp_path / "mine"}[where]  # fmt: skip
    out.mkdir(exist_ok=True)
    (out / "NOTES.txt").write_text("keep me", encoding="utf-8")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(IngestError, match="--out"):
        ingest_timelines(edits["timelines"], edits["features"], out, Params())
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    # an earlier ingest's output is replaced, as before
    ingest_timelines(edits["timelines"], edits["features"], edits["out"], Params())
    ingest_timelines(edits["timelines"], edits["features"], edits["out"], Params())
    assert (edits["out"] / schema.SEQUENCES_FILE).is_file()


def test_ingest_reports_a_duplicate_video_and_fails_when_nothing_imports(edits, tmp_path):
    vid = "solo"
    export_timeline(edits["videos"][vid][0], edits["timelines"] / f"{vid}.otio")
    summary = ingest_timelines(edits["timelines"], edits["features"], edits["out"], Params())
    assert summary["duplicates_skipped"] == 1 and summary["imported"] == 3
    # issue 10: the richer format wins, not the sort order (".edl" < ".otio" alphabetically)
    assert summary["duplicates"] == [str(edits["timelines"] / f"{vid}.edl")]
    assert summary["videos"][vid]["adapter"] == "otio_json"

    only_broken = tmp_path / "only broken"
    only_broken.mkdir()
    (only_broken / "x.edl").write_text("garbage\n001 x\n", encoding="utf-8")
    with pytest.raises(IngestError, match="none of 1 timelines"):
        ingest_timelines(only_broken, edits["features"], tmp_path / "raw2", Params())
    assert not (tmp_path / "raw2").exists()


def test_cli_entry_points(edits, tmp_path):
    report = tmp_path / "ingest.json"
    argv = ["--timelines", str(edits["timelines"]), "--features", str(edits["features"]), "--out", str(edits["out"]),
            "--params", str(ROOT / "params.yaml"), "--report", str(report)]
    assert main(argv) == 0
    assert json.loads(report.read_text(encoding="utf-8"))["imported"] == 3

    args = build_parser().parse_args(["ingest", *argv[:6]])  # the `trackfusion ingest` console command
    assert args.command == "ingest" and args.out == edits["out"] and args._run is run

    out = subprocess.run([sys.executable, str(ROOT / "stages" / "ingest.py"), "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "--features" in out.stdout and "data.raw_dir" in out.stdout  # the DVC stage


def test_no_timelines_is_an_error_or_with_allow_empty_an_empty_corpus(tmp_path):
    """The ingest stage runs before any recording is added: an empty corpus, which validate refuses."""
    from trackfusion.data.validation import validate_raw
    from trackfusion.io.sequences import TrackSequenceError

    (tmp_path / "recordings").mkdir()
    (tmp_path / "recordings" / "README.md").write_text("put recordings here")
    (tmp_path / "features").mkdir()
    params = Params()
    with pytest.raises(IngestError, match="no timeline files"):
        ingest_timelines(tmp_path / "recordings", tmp_path / "features", tmp_path / "out", params)
    summary = ingest_timelines(tmp_path / "recordings", tmp_path / "features", tmp_path / "out", params,
                               allow_empty=True)  # fmt: skip
    assert summary["imported"] == 0 and summary["timelines_found"] == 0
    with np.load(tmp_path / "out" / schema.SEQUENCES_FILE) as npz:
        assert len(npz["video_ids"]) == 0 and npz["frames"].shape == (0, schema.TRACK_WIDTH)
    with pytest.raises(TrackSequenceError, match="holds no videos"):
        validate_raw(tmp_path / "out", params)


def test_timeline_params_come_from_params_yaml_and_are_validated():
    from trackfusion.params import ParamsError, TimelineParams, load_params, params_from_dict

    tp = load_params(ROOT / "params.yaml").timeline
    assert tp == TimelineParams() and list(tp.asset_patterns)[0] == "*.png"  # order kept: first match wins
    custom = params_from_dict({"timeline": {"asset_patterns": {"*obs*": 0, "*vtuber*": 6}}}).timeline
    assert custom.asset_patterns == {"*obs*": 0, "*vtuber*": 6}
    for bad, key in [({"asset_patterns": {"*x*": 10}}, "timeline.asset_patterns['*x*']"),
                     ({"asset_patterns": {"*x*": True}}, "timeline.asset_patterns['*x*']"),
                     ({"asset_patterns": ["*x*"]}, "timeline.asset_patterns"),
                     ({"unmatched_asset": -1}, "timeline.unmatched_asset"),
                     ({"edl_rate": 0}, "timeline.edl_rate")]:
        with pytest.raises(ParamsError, match=re.escape(key)):
            params_from_dict({"timeline": bad})


def test_trackfusion_ingest_of_a_four_highlight_premiere_xml_keeps_exactly_the_highlights(tmp_path):
    """Issue 21, as a user tries it: a 10-minute recording cut to four highlights back to back (recording
    10-40, 100-130, 300-360, 500-520 s) with a face cam over the second, written as FCP 7 / Premiere XML,
    read by `trackfusion ingest`. Before: main active over 10-150 s as one block, face cam on 45-55 s."""
    import opentimelineio as otio

    from trackfusion import cli

    rate, vid = 30, "stream 2024-09-02"

    def rt(s: float) -> otio.opentime.RationalTime:
        return otio.opentime.RationalTime(round(s * rate), rate)

    def clip(name: str, start: float, length: float) -> otio.schema.Clip:
        ref = otio.schema.ExternalReference(target_url=f"{name}.mp4", available_range=otio.opentime.TimeRange(rt(0), rt(600)))
        ref.name = name
        return otio.schema.Clip(name=name, media_reference=ref, source_range=otio.opentime.TimeRange(rt(start), rt(length)))

    highlights = [(10, 40), (100, 130), (300, 360), (500, 520)]
    tl = otio.schema.Timeline(name=vid)
    main_track, face, sound = (otio.schema.Track(kind=k) for k in ("Video", "Video", "Audio"))
    main_track.extend(clip(vid, a, b - a) for a, b in highlights)
    sound.extend(clip(vid, a, b - a) for a, b in highlights)
    face.extend([otio.schema.Gap(source_range=otio.opentime.TimeRange(rt(0), rt(35))), clip("facecam", 0, 10)])
    tl.tracks.extend([main_track, face, sound])
    timelines, features = tmp_path / "timelines", tmp_path / "features"
    timelines.mkdir(), features.mkdir()
    otio.adapters.write_to_file(tl, str(timelines / f"{vid}.xml"), adapter_name="fcp_xml")
    (features / schema.audio_file_name(vid)).write_text("time,audio_energy_rms\n0.0,0.1\n", encoding="utf-8")
    assert cli.main(["ingest", "--timelines", str(timelines), "--features", str(features), "--out",
                     str(tmp_path / "raw"), "--params", str(ROOT / "params.yaml")]) == 0
    got = SequenceReader(tmp_path / "raw" / schema.SEQUENCES_FILE).track(vid)
    assert got.start_time == 0.0 and len(got.frames) == 6000  # the whole recording, kept or not
    fps = schema.FPS
    expected = {j for a, b in highlights for j in range(a * fps, b * fps)}
    assert set(np.flatnonzero(got.kept_flags).tolist()) == expected
    assert set(np.flatnonzero(got.frames[:, P]).tolist()) == set(range(105 * fps, 115 * fps))  # the face cam
