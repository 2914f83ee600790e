"""Exports for the editors users have (issue 25): Shotcut / Kdenlive's MLT rendered by ``melt`` (MLT, their
engine) and checked frame by frame like ``render``'s output; Final Cut Pro / Resolve's FCPXML read back by
OpenTimelineIO's ``fcpx_xml`` adapter, with its placement read from the XML."""
from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

pytest.importorskip("av", reason="the [extract] extra")  # CI installs it (make install)

from tests.io.test_render import STRETCHES, TONES, check_render, hand_built_edit  # noqa: E402
from tests.strategies.media import make_numbered_recording  # noqa: E402
from trackfusion import schema  # noqa: E402
from trackfusion.io.render import render_edit  # noqa: E402
from trackfusion.io.timeline import TimelineError, export_timeline, import_timeline  # noqa: E402
from trackfusion.io.timeline.formats import EXPORT_FORMATS  # noqa: E402

MELT = shutil.which("melt")
needs_melt = pytest.mark.skipif(MELT is None, reason="melt (Debian package melt) is not installed; .ci/run installs it")


def melt_render(mlt: Path, out: Path, fps: Fraction, size=(320, 180)) -> Path:
    """What Shotcut's and Kdenlive's engine makes of the file, at the recording's size and rate (an MLT
    profile file: consumer width / height alone would let melt letterbox into its default PAL profile)."""
    profile = out.with_suffix(".profile")
    profile.write_text(f"description=test\nframe_rate_num={fps.numerator}\nframe_rate_den={fps.denominator}\n"
                       f"width={size[0]}\nheight={size[1]}\nprogressive=1\nsample_aspect_num=1\nsample_aspect_den=1\n"
                       f"display_aspect_num={size[0]}\ndisplay_aspect_den={size[1]}\ncolorspace=709\n")
    done = subprocess.run([MELT, "-profile", str(profile), str(mlt), "-consumer", f"avformat:{out}", "vcodec=libx264",
                           "acodec=aac"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and out.is_file(), done.stderr[-2000:]
    return out


def otio_of(path: Path) -> otio.schema.Timeline:
    return otio.adapters.read_from_file(str(path))


def recording_frames(n: int, kept_runs: list[tuple[int, int]], scale: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """(frames, kept) at 10 fps: the recording alone on track 1 at `scale`, kept where `kept_runs` say."""
    frames = np.zeros((n, schema.TRACK_WIDTH), np.float32)
    frames[:, : schema.NUM_TRACK_PARAMS] = [1, 0, scale, schema.FRAME_WIDTH / 2, schema.FRAME_HEIGHT / 2, 0, 0, 0, 0]
    kept = np.zeros(n, bool)
    for a, b in kept_runs:
        kept[a:b] = True
    return frames, kept


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    return make_numbered_recording(tmp_path_factory.mktemp("rec") / "take.mp4", 10, 30, tones=TONES)


@needs_melt
def test_melt_renders_the_mlt_of_a_hand_built_edit_like_render(recording: Path, tmp_path: Path) -> None:
    mlt = tmp_path / "edit.mlt"
    EXPORT_FORMATS[".mlt"].write(otio_of(hand_built_edit(tmp_path / "edit.otio", recording)), mlt)
    check_render(melt_render(mlt, tmp_path / "melt.mp4", Fraction(30)), 30.0)


@needs_melt
def test_a_29_97_fps_export_renders_in_melt_at_its_rate(tmp_path: Path) -> None:
    """The project's own export, jump cuts from 10 fps frames, at the recording's 29.97 fps."""
    fps = Fraction(30000, 1001)
    rec = make_numbered_recording(tmp_path / "ntsc.mp4", 10, fps, tones=TONES)
    frames, kept = recording_frames(100, [(10, 30), (50, 70)])
    report = export_timeline(frames, tmp_path / "edit.mlt", fps=10, media_names={0: "ntsc"}, rate=29.97,
                             recording_url=rec.resolve().as_uri(), kept=kept)
    assert report["jump_cuts"] == 1 and report["timeline_rate"] == pytest.approx(30000 / 1001)
    root = ET.parse(tmp_path / "edit.mlt").getroot()
    assert root.find("profile").get("frame_rate_num") == "30000" and root.find("profile").get("frame_rate_den") == "1001"
    check_render(melt_render(tmp_path / "edit.mlt", tmp_path / "melt.mp4", fps), float(fps),
                 stretches=((1.0, 3.0, 100.0), (5.0, 7.0, 100.0)), tones=(5.0,))


@needs_melt
def test_the_mlt_carries_scale_and_crop_as_render_draws_them(recording: Path, tmp_path: Path) -> None:
    """One placement, two engines: a zoomed, cropped clip looks the same in melt's output as in render's."""
    import av

    frames, kept = recording_frames(100, [(20, 40)], scale=150.0)
    frames[:, 5:9] = [10.0, 20.0, 5.0, 15.0]  # crop l, r, t, b (%)
    frames[:, 3] = 1000.0
    for ext in (".mlt", ".otio"):
        export_timeline(frames, tmp_path / f"edit{ext}", fps=10, media_names={0: "take"},
                        recording_url=recording.resolve().as_uri(), kept=kept)
    melt_render(tmp_path / "edit.mlt", tmp_path / "melt.mp4", Fraction(30))
    render_edit(tmp_path / "edit.otio", recording, tmp_path / "render.mp4", progress=False)
    pictures = []
    for name in ("melt.mp4", "render.mp4"):
        with av.open(str(tmp_path / name)) as c:
            pictures.append([f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)][30])
    lit = [p.sum(axis=2) > 30 for p in pictures]  # where the clip is drawn (black elsewhere)
    assert abs(int(lit[0].sum()) - int(lit[1].sum())) < 0.03 * lit[1].sum()
    assert np.mean(lit[0] == lit[1]) > 0.97
    assert np.median(np.abs(pictures[0] - pictures[1])) < 12


def test_the_fcpxml_reads_back_through_the_fcpx_adapter(recording: Path, tmp_path: Path) -> None:
    fcpxml = tmp_path / "edit.fcpxml"
    EXPORT_FORMATS[".fcpxml"].write(otio_of(hand_built_edit(tmp_path / "edit.otio", recording, overlay=True)), fcpxml)
    back = otio.adapters.read_from_file(str(fcpxml), adapter_name="fcpx_xml")
    tl = next(iter(back.find_children(descended_from_type=otio.schema.Timeline)))
    lanes = {t.name: [c for c in t if isinstance(c, otio.schema.Clip)] for t in tl.tracks}
    # lane 0: the storyline, the three stretches as jump cuts from the recording's own frames
    assert [(c.source_range.start_time.to_seconds(), c.source_range.duration.to_seconds()) for c in lanes["0"]] == \
        [(s, e - s) for s, e, _ in STRETCHES]
    assert all(c.media_reference.target_url == recording.resolve().as_uri() for c in lanes["0"])
    assert [c.name for c in lanes["1"]] == ["facecam"]  # the face cam connected above it
    assert len(lanes["-1"]) == 3  # the recording's sound, cut with the picture
    root = ET.parse(fcpxml).getroot()
    assert root.find("resources/format").get("frameDuration") == "1/30s"
    zoomed = root.findall("library/event/project/sequence/spine/asset-clip")[1]
    assert zoomed.find("adjust-transform").get("scale") == "2.000000 2.000000"
    face = zoomed.find("asset-clip[@lane='1']/adjust-transform")
    # centre (1680, 270) of 1920 x 1080: +720 px right, 270 px up, in hundredths of the frame height
    assert [float(v) for v in face.get("position").split()] == pytest.approx([66.6667, 25.0], abs=1e-3)


def test_every_format_exports_a_jump_cut_edit_at_29_97_or_says_why_not(tmp_path: Path) -> None:
    frames, kept = recording_frames(100, [(10, 30), (50, 70)])
    for ext in (".mlt", ".fcpxml"):
        report = export_timeline(frames, tmp_path / f"e{ext}", fps=10, media_names={0: "rec"}, rate=29.97, kept=kept)
        assert report["jump_cuts"] == 1 and report["audio_tracks"] == 1
    with pytest.raises(TimelineError, match=r"\.mlt and \.fcpxml take any rate"):
        export_timeline(frames, tmp_path / "e.xml", fps=10, rate=29.97, kept=kept)
    with pytest.raises(TimelineError, match="not imported"):
        import_timeline(tmp_path / "e.fcpxml")
