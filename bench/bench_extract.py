"""`trackfusion extract` throughput as a multiple of real time, against plain decoding of the same file.

    .venv/bin/python bench/bench_extract.py [--quick] [--seconds 60]

Generates a recording (640x360 at 60 fps, 16 kHz mono audio with tone bursts, PyAV),
then measures in this one run: plain decoding of every packet of it (the floor: no
feature can be faster than reading the file), and `extract_recording` (decode once, audio
RMS + silero-vad, visual measures every 5th frame) without CLIP and with it (a CLIP
ViT-B/32 vision model, the default's architecture, randomly initialised and saved as a
local folder: the same computation as the real weights, no download; one embedding a
second). Prints each as x real time and its ratio to the decode, and the peak RSS of an
extract of the recording and of one twice as long (each in a subprocess of its own), whose
ratio shows whether memory stays flat in video length.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))  # tests.strategies: the recording generator shared with the tests

from tests.strategies import media  # noqa: E402


def make_recording(path: Path, seconds: float, fps: int = 60, w: int = 640, h: int = 360) -> Path:
    """Scenes of noise that alternately stand still and scroll (4 s each), a 440 Hz tone one second in three."""
    base = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)

    def frame(i: int, t: float) -> np.ndarray:
        return np.roll(base, (i * 3) % w, axis=1) if (i // (4 * fps)) % 2 else base

    def sound(t: np.ndarray) -> np.ndarray:
        return np.where((t % 3) < 1, 0.3 * np.sin(2 * np.pi * 440 * t), 0.0)

    return media.make_recording(path, seconds, frame, sound, fps, w, h)


def plain_decode(path: Path) -> float:
    import av

    start = time.perf_counter()
    with av.open(str(path)) as c:
        for packet in c.demux(c.streams.audio[0], c.streams.video[0]):
            for _ in packet.decode():
                pass
    return time.perf_counter() - start


def clip_folder(tmp: Path) -> Path:
    """ViT-B/32's vision tower (transformers' default CLIPVisionConfig) with random weights, saved locally."""
    import torch
    import transformers

    torch.manual_seed(0)
    folder = tmp / "clip-vit-b-32-random"
    transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(projection_dim=512)).save_pretrained(folder)
    return folder


def extract_once(path: Path, out: Path, clip_model: Path | None = None) -> float:
    from trackfusion.data.extract import _cached, extract_recording, load_clip
    from trackfusion.params import ExtractParams

    params = ExtractParams() if clip_model is None else ExtractParams(clip_model=str(clip_model))
    if clip_model is not None:
        _cached(load_clip, params.clip_model)  # loading the weights once is not per-recording work
    start = time.perf_counter()
    extract_recording(path, out, params, clip=clip_model is not None, progress=False)
    return time.perf_counter() - start


def peak_rss_mb(path: Path, out: Path) -> float:
    """Peak RSS of one extract in a fresh process (MB): its own VmHWM (Linux keeps ru_maxrss across
    exec, so that would report the parent's peak once the parent has held a CLIP model)."""
    code = ("import re, sys; sys.path.insert(0, sys.argv[3]); from pathlib import Path;"
            "from trackfusion.data.extract import extract_recording; from trackfusion.params import ExtractParams;"
            "extract_recording(Path(sys.argv[1]), Path(sys.argv[2]), ExtractParams(), progress=False);"
            "print(int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(path), str(out), str(ROOT / "src")], capture_output=True,
                          text=True, check=True)  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


def run(quick: bool = False, seconds: float | None = None) -> dict[str, float]:
    seconds = seconds or (10.0 if quick else 60.0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        short = make_recording(tmp / "short.mp4", seconds)
        long = make_recording(tmp / "long.mp4", 2 * seconds)
        floor = min(plain_decode(short) for _ in range(2))
        work = extract_once(short, tmp / "out")
        with_clip = extract_once(short, tmp / "out_clip", clip_folder(tmp))
        rss_short, rss_long = peak_rss_mb(short, tmp / "o1"), peak_rss_mb(long, tmp / "o2")
    return {
        "seconds_of_recording": seconds,
        "plain_decode_x_real_time": seconds / floor,
        "extract_x_real_time": seconds / work,
        "extract_vs_plain_decode": work / floor,
        "extract_with_clip_x_real_time": seconds / with_clip,
        "extract_with_clip_vs_plain_decode": with_clip / floor,
        "peak_rss_mb": rss_short,
        "peak_rss_mb_twice_as_long": rss_long,
        "rss_ratio_twice_as_long": rss_long / rss_short,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a 10 s recording (and 20 s for memory)")
    ap.add_argument("--seconds", type=float, default=None)
    args = ap.parse_args()
    print(json.dumps(run(args.quick, args.seconds), indent=2))
