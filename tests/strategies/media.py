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


# --- a recording whose frames say their own number, for the render tests ---------------------------
BITS = 10  # frames 0 .. 1023
CELL = (32, 20)  # (w, h) of one bit's block, in a 320 x 180 recording
BITS_ORIGIN = (80, 50)  # the bit blocks' top left: 5 x 2 blocks inside the frame's central half
SQUARE = (140, 100, 40)  # x, y, side of a green square: the known object a zoom scales


def numbered_picture(i: int, width: int = 320, height: int = 180) -> np.ndarray:
    """Frame `i`: its number as BITS white / black blocks on grey, and a green square."""
    img = np.full((height, width, 3), 90, np.uint8)
    for b in range(BITS):
        x = BITS_ORIGIN[0] + (b % 5) * CELL[0]
        y = BITS_ORIGIN[1] + (b // 5) * CELL[1]
        img[y : y + CELL[1], x : x + CELL[0]] = 255 if (i >> b) & 1 else 0
    sx, sy, side = SQUARE
    img[sy : sy + side, sx : sx + side] = (0, 220, 0)
    return img


def bit_centres() -> list[tuple[float, float]]:
    """(x, y) recording pixels of each bit block's centre, bit 0 first."""
    return [(BITS_ORIGIN[0] + (b % 5 + 0.5) * CELL[0], BITS_ORIGIN[1] + (b // 5 + 0.5) * CELL[1]) for b in range(BITS)]


def read_number(frame: np.ndarray, to_output: Callable[[float, float], tuple[float, float]]) -> int:
    """The number a rendered frame shows, its bit blocks found through `to_output` (recording px -> output px)."""
    n = 0
    for b, (x, y) in enumerate(bit_centres()):
        u, v = to_output(x, y)
        patch = frame[int(v) - 2 : int(v) + 3, int(u) - 2 : int(u) + 3].astype(float)
        n |= int(patch.mean() > 128) << b
    return n


def _sound_until(out, stream, x: np.ndarray, k: int, end: int, chunk: int = 1024) -> int:
    """Encode mono samples `x` from `k` in chunks until `end` is reached; returns the next sample to write."""
    import av

    while k < end:
        frame = av.AudioFrame.from_ndarray(x[None, k : k + chunk], format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = stream.rate, k, Fraction(1, stream.rate)
        for packet in stream.encode(frame):
            out.mux(packet)
        k += chunk
    return k


def make_numbered_recording(path: Path, seconds: float, fps: float | Fraction = 30,
                            tones: tuple[float, ...] = (), tone_s: float = 0.3, rate: int = 48_000,
                            frame_times: Callable[[int], float] | None = None) -> Path:  # fmt: skip
    """A 320 x 180 recording of numbered frames (h264 where PyAV has it) and a mono sound track silent but for
    1 kHz tone bursts starting at `tones` (s). ``frame_times(i)`` gives frame i's time for variable frame
    rate (its pts on a 1/90000 clock); default i / fps."""
    import av

    out = av.open(str(path), "w")
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    vs = out.add_stream(codec, rate=Fraction(fps).limit_denominator(100_000))
    vs.width, vs.height, vs.pix_fmt = 320, 180, "yuv420p"
    vs.options = {"crf": "18", "preset": "veryfast"} if codec == "libx264" else {}
    clock = Fraction(1, 90_000)
    if frame_times is not None:
        vs.time_base = clock
    aus = out.add_stream("aac", rate=rate, layout="mono")
    n = int(seconds * fps)
    if frame_times is not None:
        n = next(i for i in range(10**7) if frame_times(i) >= seconds)
    t_audio = np.arange(int(seconds * rate)) / rate
    on = np.any([(t_audio >= a) & (t_audio < a + tone_s) for a in tones], axis=0) if tones else np.zeros(len(t_audio), bool)
    x = np.where(on, 0.6 * np.sin(2 * np.pi * 1000 * t_audio), 0.0).astype(np.float32)
    k = 0
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(numbered_picture(i), format="rgb24")
        if frame_times is None:
            frame.pts, frame.time_base = i, Fraction(1) / Fraction(fps).limit_denominator(100_000)
        else:
            frame.pts, frame.time_base = int(round(frame_times(i) * 90_000)), clock
        for packet in vs.encode(frame):
            out.mux(packet)
        t_next = (i + 1) / fps if frame_times is None else frame_times(i + 1) if i + 1 < n else seconds
        k = _sound_until(out, aus, x, k, min(int(np.ceil(float(t_next) * rate)), len(x)))  # interleaved
    for packet in vs.encode():
        out.mux(packet)
    _sound_until(out, aus, x, k, len(x))
    for packet in aus.encode():
        out.mux(packet)
    out.close()
    return path
