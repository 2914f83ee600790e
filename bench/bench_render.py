"""Render throughput and memory (issue 25): ``trackfusion render`` against plain decoding plus encoding.

    .venv/bin/python bench/bench_render.py [--quick]

For a 640 x 360 and a 1920 x 1080 recording (30 fps, numbered frames and a tone track, made
with PyAV in the run), each in a fresh subprocess:

- ``render``: a highlight edit of half the recording in 20 stretches out of recording order (each
  start a seek), one in three zoomed to 150 % with a crop, a face cam drawn as a labelled box on
  V2, the sound cut along;
- ``floor``: the same number of frames decoded from the same file and encoded with the same
  encoder settings, with no seeking, compositing or sound: the reference measured in the same run.

Figures: frames/s, the multiple of real time (frames/s / 30), render / floor, and peak RSS
(VmHWM) of a render of the recording at two lengths (its ratio: flat in length means ~1x).
``--quick``: shorter recordings.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from timing import vmhwm_mb  # bench/ is on sys.path when a benchmark runs

ROOT = Path(__file__).resolve().parents[1]
FPS = 30


def _recording(path: Path, seconds: float, width: int, height: int) -> Path:
    """A recording of numbered frames scaled to `width` x `height`, with a tone track (made once, cached)."""
    if path.exists():
        return path
    import av
    import numpy as np

    sys.path[:0] = [str(ROOT), str(ROOT / "src")]
    from tests.strategies.media import numbered_picture

    tmp = path.with_suffix(".part.mp4")
    out = av.open(str(tmp), "w")
    vs = out.add_stream("libx264", rate=FPS)
    vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
    vs.options = {"preset": "veryfast", "crf": "23"}
    aus = out.add_stream("aac", rate=48_000, layout="mono")
    import cv2

    base = [cv2.resize(numbered_picture(i), (width, height), interpolation=cv2.INTER_NEAREST) for i in range(64)]
    k = 0
    for i in range(int(seconds * FPS)):
        frame = av.VideoFrame.from_ndarray(base[i % 64], format="rgb24")
        frame.pts = i
        for p in vs.encode(frame):
            out.mux(p)
        while k < (i + 1) * 48_000 // FPS:
            t = (k + np.arange(1024)) / 48_000
            chunk = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                               format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = 48_000, k
            for p in aus.encode(chunk):
                out.mux(p)
            k += 1024
    for s in (vs, aus):
        for p in s.encode():
            out.mux(p)
    out.close()
    tmp.rename(path)
    return path


def _edit(path: Path, recording: Path, seconds: float) -> Path:
    """20 stretches of the recording, out of order, one in three zoomed and cropped; a face cam box on V2."""
    import opentimelineio as otio
    import numpy as np

    rng = np.random.default_rng(0)
    rt = lambda s: otio.opentime.RationalTime(round(s * FPS), FPS)  # noqa: E731
    tl = otio.schema.Timeline(name="bench")
    video, face, sound = (otio.schema.Track(name=n, kind=k) for n, k in (("V1", "Video"), ("V2", "Video"),
                                                                         ("A1", "Audio")))
    length = seconds / 20 * 0.5  # half of the recording, in 20 stretches
    starts = rng.permutation(20) * seconds / 20
    for i, s in enumerate(starts):
        for track in (video, sound):
            ref = otio.schema.ExternalReference(target_url=str(recording),
                                                available_range=otio.opentime.TimeRange(rt(0), rt(seconds)))
            ref.name = recording.stem
            clip = otio.schema.Clip(name=recording.stem, media_reference=ref,
                                    source_range=otio.opentime.TimeRange(rt(s), rt(length)))
            zoomed = i % 3 == 0
            clip.metadata["trackfusion"] = {"asset_id": 0, "scale": 150.0 if zoomed else 100.0, "x": 960.0,
                                            "y": 540.0, "crop_l": 5.0 if zoomed else 0.0, "crop_r": 0.0,
                                            "crop_t": 0.0, "crop_b": 0.0}
            track.append(clip)
    ref = otio.schema.ExternalReference(target_url="facecam")
    ref.name = "facecam"
    cam = otio.schema.Clip(name="facecam", media_reference=ref, source_range=otio.opentime.TimeRange(rt(0), rt(20 * length)))
    cam.metadata["trackfusion"] = {"asset_id": 1, "scale": 25.0, "x": 1680.0, "y": 270.0, "crop_l": 0.0,
                                   "crop_r": 0.0, "crop_t": 0.0, "crop_b": 0.0}
    face.append(cam)
    for t in (video, face, sound):
        tl.tracks.append(t)
    otio.adapters.write_to_file(tl, str(path))
    return path


def worker(kind: str, recording: str, edit: str, out: str, frames: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "src"))
    start = time.perf_counter()
    if kind == "render":
        from trackfusion.io.render import render_edit

        report = render_edit(edit, recording, out, progress=False)
        n = report["frames"]
    else:  # the floor: decode the same number of frames in order and encode them, nothing else
        import av

        with av.open(recording) as src, av.open(out, "w") as dst:
            v = src.streams.video[0]
            v.thread_type = "AUTO"
            enc = dst.add_stream("libx264", rate=FPS)
            enc.width, enc.height, enc.pix_fmt = v.codec_context.width, v.codec_context.height, "yuv420p"
            enc.options = {"crf": "20", "preset": "veryfast"}
            n = 0
            for frame in src.decode(v):
                if n == frames:
                    break
                rgb = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
                rgb.pts = n
                for p in enc.encode(rgb):
                    dst.mux(p)
                n += 1
            for p in enc.encode():
                dst.mux(p)
    wall = time.perf_counter() - start
    return {"frames": n, "wall_s": wall, "fps": n / wall, "peak_rss_mb": vmhwm_mb()}


def _run(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", nargs=5)
    parser.add_argument("--dir", type=Path, default=ROOT / "runs" / "bench_render")
    args = parser.parse_args()
    if args.worker:
        kind, recording, edit, out, frames = args.worker
        print(json.dumps(worker(kind, recording, edit, out, int(frames))))
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    sizes = {"640x360": (640, 360, (20, 60) if not args.quick else (10, 20)),
             "1920x1080": (1920, 1080, (10, 30) if not args.quick else (4, 8))}
    rows = []
    for name, (w, h, lengths) in sizes.items():
        peaks = []
        for seconds in lengths:
            rec = _recording(args.dir / f"rec_{name}_{seconds}s.mp4", seconds, w, h)
            edit = _edit(args.dir / f"edit_{name}_{seconds}s.otio", rec, seconds)
            r = _run("render", str(rec), str(edit), str(args.dir / "render.mp4"), "0")
            f = _run("floor", str(rec), str(edit), str(args.dir / "floor.mp4"), str(r["frames"]))
            peaks.append(r["peak_rss_mb"])
            rows.append((name, seconds, r, f))
            print(f"{name} {seconds:>3} s recording: render {r['fps']:7.1f} frames/s ({r['fps'] / FPS:5.2f}x real "
                  f"time), floor {f['fps']:7.1f} frames/s ({f['fps'] / FPS:5.2f}x); render / floor "
                  f"{r['fps'] / f['fps']:.2f}; peak RSS render {r['peak_rss_mb']:.0f} MB, floor "
                  f"{f['peak_rss_mb']:.0f} MB", flush=True)
        print(f"{name}: peak RSS {lengths[1]} s / {lengths[0]} s recording = {peaks[1] / peaks[0]:.2f}x "
              f"(the recording {lengths[1] / lengths[0]:.0f}x longer)", flush=True)


if __name__ == "__main__":
    main()
