"""Recordings made in the test: video frames and a mono sound track, encoded by PyAV.

Shared by the extract tests and ``bench/bench_extract.py``; PyAV comes with the
``[extract]`` extra.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np


def make_recording(path: Path, seconds: float, frame: Callable[[int, float], np.ndarray] | None,
                   sound: Callable[[np.ndarray], np.ndarray] | None, fps: int = 30, width: int = 160,
                   height: int = 120, rate: int = 16_000) -> Path:  # fmt: skip
    """Write `path` (mpeg4 video, AAC audio): ``frame(i, t)`` gives frame i's (height, width, 3)
    uint8 RGB picture, ``sound(t)`` the samples at times `t` (s); None leaves that stream out."""
    import av

    out = av.open(str(path), "w")
    if frame is not None:
        vs = out.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
    if sound is not None:
        aus = out.add_stream("aac", rate=rate)
        aus.layout = "mono"
    if frame is not None:
        for i in range(int(seconds * fps)):
            for packet in vs.encode(av.VideoFrame.from_ndarray(frame(i, i / fps), format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    if sound is not None:
        x = np.asarray(sound(np.arange(int(seconds * rate)) / rate), np.float32)
        for k in range(0, len(x), 1024):
            chunk = av.AudioFrame.from_ndarray(x[None, k : k + 1024], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = rate, k, Fraction(1, rate)
            for packet in aus.encode(chunk):
                out.mux(packet)
        for packet in aus.encode():
            out.mux(packet)
    out.close()
    return path


# --- a recording whose events are known -------------------------------------------------
FPS, W, H, SR, SECONDS = 30, 160, 120, 16_000, 6.0
CUTS = (2.0, 4.0)  # hard cuts between three coloured scenes
BLOCK = (2.5, 3.5)  # a white block moves across the frame
BURSTS = ((1.0, 2.0), (4.0, 5.0))  # a 440 Hz tone, silence elsewhere


def known_picture(i: int, t: float) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    img[:] = [(200, 30, 30), (30, 200, 30), (30, 30, 200)][sum(t >= c for c in CUTS)]
    if BLOCK[0] <= t < BLOCK[1]:
        x = int((t - BLOCK[0]) / (BLOCK[1] - BLOCK[0]) * (W - 20))
        img[50:70, x : x + 20] = 255
    return img


def _tones(t: np.ndarray) -> np.ndarray:
    on = np.any([(t >= a) & (t < b) for a, b in BURSTS], axis=0)
    return np.where(on, 0.5 * np.sin(2 * np.pi * 440 * t), 0.0)


def make_known_recording(path: Path, audio: bool = True, video: bool = True) -> Path:
    """A 6 s recording with known events (the constants above): scene cuts, a moving block, tone bursts."""
    return make_recording(path, SECONDS, known_picture if video else None, _tones if audio else None, FPS, W, H, SR)
