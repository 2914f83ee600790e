"""`trackfusion render` (issue 25): a hand-built edit of a recording whose frames show their own number
is rendered, and the file is read back frame by frame and sample by sample."""
from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av", reason="the [extract] extra")  # CI installs it (make install)

import opentimelineio as otio  # noqa: E402

from tests.strategies.media import SQUARE, make_numbered_recording, read_number  # noqa: E402
from trackfusion.io.render import RenderError, render_edit  # noqa: E402

#: (recording start s, end s, scale %): three stretches out of recording order, the second zoomed
STRETCHES = ((4.0, 6.0, 100.0), (1.0, 3.0, 200.0), (7.0, 9.0, 100.0))
TONES = (5.0, 8.0)  # recording s: 1 kHz bursts, so at edit 1.0 s and 5.0 s


def hand_built_edit(path: Path, recording: Path, stretches=STRETCHES, rate: float = 30.0,
                    overlay: bool = False) -> Path:  # fmt: skip
    """An .otio edit playing `stretches` of `recording` back to back, its sound cut along; with `overlay`, a
    face cam drawn from a file named 'facecam' on V2 over the second stretch, a quarter of the frame."""
    rt = lambda s: otio.opentime.RationalTime(round(s * rate), rate)  # noqa: E731
    tl = otio.schema.Timeline(name="hand-built")
    video, sound = otio.schema.Track(name="V1", kind="Video"), otio.schema.Track(name="A1", kind="Audio")
    for start, end, scale in stretches:
        for track in (video, sound):
            ref = otio.schema.ExternalReference(target_url=str(recording),
                                                available_range=otio.opentime.TimeRange(rt(0), rt(10)))
            ref.name = recording.stem
            clip = otio.schema.Clip(name=recording.stem, media_reference=ref,
                                    source_range=otio.opentime.TimeRange(rt(start), rt(end - start)))
            clip.metadata["trackfusion"] = {"asset_id": 0, "scale": scale, "x": 960.0, "y": 540.0, "crop_l": 0.0,
                                            "crop_r": 0.0, "crop_t": 0.0, "crop_b": 0.0}
            track.append(clip)
    tl.tracks.append(video)
    if overlay:
        face = otio.schema.Track(name="V2", kind="Video")
        face.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(rt(0), rt(2))))
        ref = otio.schema.ExternalReference(target_url="facecam.png")
        ref.name = "facecam"
        clip = otio.schema.Clip(name="facecam", media_reference=ref, source_range=otio.opentime.TimeRange(rt(0), rt(2)))
        clip.metadata["trackfusion"] = {"asset_id": 1, "scale": 25.0, "x": 1680.0, "y": 270.0, "crop_l": 0.0,
                                        "crop_r": 0.0, "crop_t": 0.0, "crop_b": 0.0}
        face.append(clip)
        tl.tracks.append(face)
    tl.tracks.append(sound)
    otio.adapters.write_to_file(tl, str(path))
    return path


def decoded(path: Path) -> tuple[list[np.ndarray], float, np.ndarray, int]:
    """(frames RGB, frame rate, mono samples, sample rate) of a rendered file."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        rate = float(v.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(v)]
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        sr = a.sample_rate
        samples = np.concatenate([f.to_ndarray().reshape(f.to_ndarray().shape[0], -1)[0] for f in c.decode(a)])
    return frames, rate, samples, sr


def zoom(scale: float, size=(320, 180)):
    """Recording px -> output px for a centred clip at `scale` % (recording and output the same size)."""
    cx, cy = size[0] / 2, size[1] / 2
    return lambda x, y: (cx + (x - cx) * scale / 100, cy + (y - cy) * scale / 100)


def check_render(out: Path, fps: float, stretches=STRETCHES, tones=TONES) -> None:
    """The checks every renderer's output passes: length, frames, zoom, sound (the issue's list)."""
    frames, rate, samples, sr = decoded(out)
    length = sum(e - s for s, e, _ in stretches)
    assert abs(rate - fps) < 1e-3
    assert abs(len(frames) - length * fps) <= 1  # the edit's length, +-1 frame
    starts = np.cumsum([0.0] + [e - s for s, e, _ in stretches])
    for i, (start, _end, scale) in enumerate(stretches):
        for into in (0.1, 0.5, 1.4, 1.9):
            k = int(round((starts[i] + into) * fps))
            want = (start + k / fps - starts[i]) * fps  # the recording frame on screen at that edit time
            got = read_number(frames[k], zoom(scale))
            assert abs(got - want) <= 1.01, (i, into, got, want)
        # the known object at the edit's scale: the green square's side
        k = int(round((starts[i] + 1.0) * fps))
        row = frames[k][int(zoom(scale)(0, SQUARE[1] + SQUARE[2] / 2)[1])].astype(int)  # through the square's middle
        green = (row[:, 1] > 110) & (row[:, 0] < 120) & (row[:, 2] < 120)  # half-way up its edges (0 .. 220)
        cols = np.flatnonzero(green)
        side = SQUARE[2] * scale / 100
        assert abs((cols.max() - cols.min() + 1) - side) <= 3 + 0.04 * side  # edges blur in 4:2:0 colour
    loud = np.abs(samples) > 0.2
    onsets = np.flatnonzero(np.diff(loud.astype(np.int8)) == 1) / sr
    for tone in tones:  # each tone burst lands at its edit time, within one frame
        i = next(i for i, (s, e, _) in enumerate(stretches) if s <= tone < e)
        at = starts[i] + tone - stretches[i][0]
        assert np.min(np.abs(onsets - at)) <= 1 / fps, (tone, at, onsets[:8])


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    return make_numbered_recording(tmp_path_factory.mktemp("rec") / "take.mp4", 10, 30, tones=TONES)


def test_a_hand_built_edit_renders_the_right_frames_zoom_and_sound(recording: Path, tmp_path: Path) -> None:
    edit = hand_built_edit(tmp_path / "edit.otio", recording)
    report = render_edit(edit, recording, tmp_path / "preview.mp4", progress=False)
    assert report["frames"] == 180 and report["sound"] and report["sound_stretches"] == 3
    check_render(tmp_path / "preview.mp4", 30.0)


def test_a_29_97_fps_recording_renders_at_its_own_rate(tmp_path: Path) -> None:
    fps = Fraction(30000, 1001)
    rec = make_numbered_recording(tmp_path / "ntsc.mp4", 10, fps, tones=TONES)
    edit = hand_built_edit(tmp_path / "edit.otio", rec, rate=30000 / 1001)
    render_edit(edit, rec, tmp_path / "preview.mp4", progress=False)
    check_render(tmp_path / "preview.mp4", float(fps))


def test_variable_frame_rate_shows_the_frame_on_screen(tmp_path: Path) -> None:
    """Frames at 1/30 s but every 4th held twice as long: the render shows the frame whose time has come."""
    times = np.cumsum([0.0] + [2 / 30 if i % 4 == 3 else 1 / 30 for i in range(400)])
    rec = make_numbered_recording(tmp_path / "vfr.mp4", 10, 30, frame_times=lambda i: float(times[i]))
    edit = hand_built_edit(tmp_path / "edit.otio", rec, ((4.0, 6.0, 100.0),))
    render_edit(edit, rec, tmp_path / "preview.mp4", progress=False)
    frames, rate, _, _ = decoded(tmp_path / "preview.mp4")
    assert abs(rate - 24.0) < 0.5  # the recording's average rate: 4 frames every 5/30 s
    assert abs(len(frames) - 2.0 * rate) <= 1
    for k in range(0, len(frames), 5):
        t = 4.0 + k / rate
        want = int(np.searchsorted(times, t + 1e-6)) - 1  # the last frame whose time has come
        assert read_number(frames[k], zoom(100)) == want, (k, t)


def test_other_media_come_from_the_media_folder_else_a_labelled_box(recording: Path, tmp_path: Path) -> None:
    import cv2

    edit = hand_built_edit(tmp_path / "edit.otio", recording, overlay=True)
    boxed = render_edit(edit, recording, tmp_path / "boxed.mp4", progress=False)
    assert boxed["boxed_media"] == {"facecam.png": 60}  # named by its file
    media = tmp_path / "media"
    media.mkdir()
    cv2.imwrite(str(media / "facecam.png"), np.full((180, 320, 3), (255, 0, 255), np.uint8))  # magenta, BGR
    drawn = render_edit(edit, recording, tmp_path / "drawn.mp4", media, progress=False)
    assert drawn["boxed_media"] == {} and drawn["media_frames"] == 60
    frames, *_ = decoded(tmp_path / "drawn.mp4")
    # a quarter of the frame, centred at (1680, 270) of 1920 x 1080: output (280, 45), 80 x 45 px
    px = frames[int(2.5 * 30)][45, 280].astype(int)
    assert px[0] > 200 and px[1] < 60 and px[2] > 200, px
    green = frames[int(2.5 * 30)][120, 160].astype(int)  # the zoomed recording's square, beside the face cam
    assert green[1] > 150 and green[0] < 100, green
    before = frames[int(1.5 * 30)][45, 280].astype(int)
    assert not (before[0] > 200 and before[1] < 60 and before[2] > 200)


def _render_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRACKFUSION_DEBUG"}
    return subprocess.run([sys.executable, "-m", "trackfusion.cli", "render", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("case", ["missing recording", "corrupt recording", "edit past the end", "not an edit"])
def test_a_bad_recording_or_edit_is_one_error_line_and_nothing_written(recording: Path, tmp_path: Path,
                                                                       case: str) -> None:
    edit = hand_built_edit(tmp_path / "edit.otio", recording)
    rec = recording
    if case == "missing recording":
        rec = tmp_path / "gone.mp4"
        message = "gone.mp4: recording not found"
    elif case == "corrupt recording":
        rec = tmp_path / "broken.mp4"
        rec.write_bytes(recording.read_bytes()[:2000])
        message = "broken.mp4: not a readable video"
    elif case == "edit past the end":
        edit = hand_built_edit(tmp_path / "long.otio", recording, ((8.0, 12.0, 100.0),))
        message = "past its end at 10.00 s"
    else:
        edit = tmp_path / "edit.otio"
        edit.write_text("{ not json")
        message = "edit.otio: not a readable otio_json timeline"
    (tmp_path / "keep.mp4").write_bytes(b"an earlier render")
    done = _render_cli([str(edit), "--recording", str(rec), "--out", "keep.mp4"], tmp_path)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "keep.mp4").read_bytes() == b"an earlier render"  # nothing half-written over it
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".keep")) == []


def test_sound_and_picture_stay_within_a_frame_over_a_60_minute_variable_rate_recording(tmp_path: Path) -> None:
    """A 60-minute recording, every 4th frame held twice as long (variable frame rate), whose picture flashes
    white with each tone burst: an edit of stretches from its first, middle and last minutes, rendered, shows
    each flash and hears each burst within one frame of each other and of the edit time they belong at."""
    import av

    seconds, size, sr = 3600.0, (32, 18), 16_000
    step = [1 / 30, 1 / 30, 1 / 30, 2 / 30]
    bursts = (70.0, 1805.0, 3590.0)  # recording s
    path = tmp_path / "hour.mp4"
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=30)  # the nominal rate; the frames' own times vary (24 fps on average)
    vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
    vs.options = {"preset": "ultrafast"}
    vs.time_base = Fraction(1, 90_000)
    aus = out.add_stream("aac", rate=sr, layout="mono")
    white, black = np.full((size[1], size[0], 3), 255, np.uint8), np.zeros((size[1], size[0], 3), np.uint8)
    t, i, k = 0.0, 0, 0
    while t < seconds:
        while k < min(t + 0.1, seconds) * sr:  # sound a little ahead of the picture, interleaved (its encoder opens
            ts = (k + np.arange(4096)) / sr   # before the first packet is muxed)
            x = np.where(np.any([(ts >= b) & (ts < b + 0.5) for b in bursts], axis=0), 0.6 * np.sin(2e3 * np.pi * ts),
                         0.0).astype(np.float32)
            chunk = av.AudioFrame.from_ndarray(x[None], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = sr, k, Fraction(1, sr)
            for packet in aus.encode(chunk):
                out.mux(packet)
            k += 4096
        on = any(b <= t < b + 0.5 for b in bursts)
        frame = av.VideoFrame.from_ndarray(white if on else black, format="rgb24")
        frame.pts, frame.time_base = int(round(t * 90_000)), Fraction(1, 90_000)
        for packet in vs.encode(frame):
            out.mux(packet)
        t += step[i % 4]
        i += 1
    for stream in (vs, aus):
        for packet in stream.encode():
            out.mux(packet)
    out.close()
    stretches = tuple((b - 2.0, b + 2.0, 100.0) for b in bursts)
    edit = hand_built_edit(tmp_path / "edit.otio", path, stretches)
    # the edit's media range: the recording's hour (hand_built_edit says 10 s)
    tl = otio.adapters.read_from_file(str(edit))
    for clip in tl.find_clips():
        clip.media_reference.available_range = otio.opentime.TimeRange(otio.opentime.RationalTime(0, 30),
                                                                       otio.opentime.RationalTime(seconds * 30, 30))
    otio.adapters.write_to_file(tl, str(edit))
    report = render_edit(edit, path, tmp_path / "preview.mp4", progress=False)
    frames, rate, samples, out_sr = decoded(tmp_path / "preview.mp4")
    assert report["fps"] == pytest.approx(rate) and abs(len(frames) - 12.0 * rate) <= 1
    lit = np.array([f.mean() > 128 for f in frames])
    flashes = np.flatnonzero(np.diff(lit.astype(np.int8)) == 1) + 1
    loud = np.abs(samples) > 0.2
    onsets = np.flatnonzero(np.diff(loud.astype(np.int8)) == 1) / out_sr
    onsets = onsets[np.concatenate([[True], np.diff(onsets) > 0.25])]  # one per burst
    assert len(flashes) == 3 and len(onsets) == 3, (flashes, onsets)
    for n, (flash, onset) in enumerate(zip(flashes / rate, onsets)):
        at = 4.0 * n + 2.0  # each burst 2 s into its stretch
        assert abs(flash - at) <= 1.5 / rate and abs(onset - at) <= 1 / rate and abs(flash - onset) <= 1.5 / rate
