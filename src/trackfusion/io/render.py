"""`trackfusion render`: an edit played out to a video file, to watch it without an editing application.

The edit is read as every import reads it (``io.timeline.read_clips``: any format, its
clips on the edit's own time), then each output frame is composed at the recording's frame
rate: the video tracks bottom (V1) to top, each clip's picture placed by its scale, position
and crop (``io.placement``). Clips of the recording, a face cam cropped from the same
screen capture included, are drawn from the recording at their own source time; other
media from ``--media DIR`` (a file named as the clip's media, any extension), else a
labelled box where they sit. The recording's sound is cut along: its audio clips in the
edit, else its video clips.

Memory stays flat in the recording's length: frames are decoded as they are needed (one
decoder per stretch of the recording that plays at once, seeking where the edit jumps), and
sound is cut in step with the picture, so the muxer never queues more than a frame's worth.
Sync: output frame ``k`` is edit time ``k / rate`` and sample ``n`` edit time ``n / sr``, both
computed from the edit's times, never accumulated, and a frame shows the recording frame on
screen at its source time (the last one whose timestamp is not after it), so variable frame
rate input lands right too. The file is written whole or not at all.

    trackfusion render edit.xml --recording rec.mp4 --out preview.mp4 [--media assets/]
"""
from __future__ import annotations

import argparse
import logging
import math
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from tqdm import tqdm

from trackfusion import schema
from trackfusion.atomic import atomic_path
from trackfusion.io.placement import place
from trackfusion.io.timeline import CLIP_PARAMS
from trackfusion.io.timeline.reading import read_clips
from trackfusion.io.timeline.records import ClipSpan
from trackfusion.params import TimelineParams, command_params

log = logging.getLogger(__name__)

TIME_EPS = 1e-6  # s: float fuzz on frame times
SEEK_AHEAD_S = 2.0  # a jump forward further than this seeks instead of decoding through
READERS_PER_MEDIA = 4  # decoders one media may hold at once (stretches of it shown at the same time)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".m4v": "mp4"}


class RenderError(ValueError):
    """The edit, the recording or the output cannot be rendered; the message names the file and the fix."""


def _av():
    try:
        import av
    except ImportError as exc:  # the [extract] extra
        raise RenderError("render needs PyAV: pip install 'trackfusion[extract]'") from exc
    return av


# --------------------------------------------------------------------------- decoding, in step with the edit


@dataclass
class _Shown:
    time: float
    frame: Any  # av.VideoFrame
    rgb: np.ndarray | None = None


class VideoReader:
    """The frame on screen at any source time of one video file, decoded forward, seeking on jumps."""

    def __init__(self, path: Path):
        av = _av()
        try:
            self.container = av.open(str(path))
            self.stream = self.container.streams.video[0]
        except (av.error.FFmpegError, IndexError, OSError) as exc:
            raise RenderError(f"{path}: not a readable video ({type(exc).__name__}: {exc})") from exc
        self.stream.thread_type = "AUTO"
        self.path = path
        self.size = (self.stream.codec_context.width, self.stream.codec_context.height)
        self._frames: Iterator | None = None
        self._cur: _Shown | None = None
        self._next: _Shown | None = None

    @property
    def time(self) -> float:
        """Source time of the frame on screen now (-inf before any)."""
        return self._cur.time if self._cur is not None else -math.inf

    def _pull(self) -> _Shown | None:
        for frame in self._frames:
            if frame.time is not None:
                return _Shown(float(frame.time), frame)
        return None

    def _seek(self, t: float) -> None:
        tb = self.stream.time_base
        self.container.seek(max(int(t / tb), 0), stream=self.stream, backward=True, any_frame=False)
        self._frames = self.container.decode(self.stream)
        self._cur, self._next = None, self._pull()

    def frame_at(self, t: float) -> np.ndarray:
        """(H, W, 3) uint8 RGB of the frame on screen at source time `t` (the first frame before any)."""
        if self._frames is None or t < self.time - TIME_EPS or t > max(self.time, 0.0) + SEEK_AHEAD_S:
            self._seek(t)
        while self._next is not None and self._next.time <= t + TIME_EPS:
            self._cur, self._next = self._next, self._pull()
        if self._cur is None:  # t before the first frame after the seek (or the file's first frame)
            self._cur, self._next = self._next, self._pull()
        if self._cur is None:
            raise RenderError(f"{self.path}: no frame to show at {t:.3f} s (the file holds no video frames)")
        if self._cur.rgb is None:
            self._cur.rgb = self._cur.frame.to_ndarray(format="rgb24")
        return self._cur.rgb

    def close(self) -> None:
        self.container.close()


class AudioCutter:
    """The recording's sound along the edit: ``take(n)`` gives the next `n` samples of edit time.

    ``plan`` is ``[(edit_start_s, edit_end_s, source_start_s)]``: the stretches of the edit
    where the recording sounds, sorted; the rest is silence."""

    def __init__(self, path: Path, plan: list[tuple[float, float, float]]):
        av = _av()
        self.av = av
        self.container = av.open(str(path))
        self.stream = self.container.streams.audio[0]
        self.rate = int(self.stream.codec_context.sample_rate)
        self.layout = self.stream.codec_context.layout.name
        self.channels = len(self.stream.codec_context.layout.channels)
        self.plan = [(round(a * self.rate), round(b * self.rate), s) for a, b, s in plan if b > a]
        self.position = 0  # edit samples given so far
        self._buffer = np.zeros((self.channels, 0), np.float32)
        self._buffer_start = 0  # source sample of the buffer's first
        self._frames: Iterator | None = None

    def _seek(self, sample: int) -> None:
        t = sample / self.rate
        self.container.seek(max(int(t / self.stream.time_base), 0), stream=self.stream, backward=True)
        self._frames = self.container.decode(self.stream)
        self._resampler = self.av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
        self._buffer = np.zeros((self.channels, 0), np.float32)
        self._buffer_start = None

    def _source(self, start: int, n: int) -> np.ndarray:
        """(channels, n) source samples from source sample `start` (zeros past the file's end)."""
        end = start + n
        have = self._buffer_start is not None
        if self._frames is None or not have or start < self._buffer_start or start > self._buffer_start + \
                self._buffer.shape[1] + self.rate * SEEK_AHEAD_S:
            self._seek(start)
        while self._buffer_start is None or self._buffer_start + self._buffer.shape[1] < end:
            frame = next(self._frames, None)
            if frame is None:
                break
            for out in self._resampler.resample(frame):
                data = out.to_ndarray().astype(np.float32).reshape(self.channels, -1)
                if self._buffer_start is None:
                    self._buffer_start = round(float(frame.time) * self.rate) if frame.time is not None else 0
                self._buffer = np.concatenate([self._buffer, data], axis=1)
        if self._buffer_start is None:
            return np.zeros((self.channels, n), np.float32)
        got = np.zeros((self.channels, n), np.float32)
        lo, hi = start - self._buffer_start, end - self._buffer_start
        a, b = max(lo, 0), min(hi, self._buffer.shape[1])
        if b > a:
            got[:, a - lo : b - lo] = self._buffer[:, a:b]
        keep_from = max(min(lo, self._buffer.shape[1]), 0)  # what is before `start` is never asked again
        self._buffer, self._buffer_start = self._buffer[:, keep_from:], self._buffer_start + keep_from
        return got

    def take(self, n: int) -> np.ndarray:
        out = np.zeros((self.channels, n), np.float32)
        p0, p1 = self.position, self.position + n
        for a, b, source in self.plan:
            lo, hi = max(a, p0), min(b, p1)
            if hi > lo:
                out[:, lo - p0 : hi - p0] = self._source(round(source * self.rate) + lo - a, hi - lo)
        self.position = p1
        return out

    def close(self) -> None:
        self.container.close()


# --------------------------------------------------------------------------- what each clip shows


class _Media:
    """Pictures for the clips: the recording and media files through readers, else a labelled box."""

    def __init__(self, recording: Path, media_dir: Path | None, tally: Counter):
        self.recording, self.media_dir, self.tally = recording, media_dir, tally
        self.readers: dict[Path, list[VideoReader]] = {}
        self.images: dict[Path, np.ndarray] = {}
        self.found: dict[str, Path | None] = {}

    def file_of(self, name: str) -> Path | None:
        if name not in self.found:
            hit = None
            if self.media_dir is not None and name:
                stem = Path(name).name
                exact = self.media_dir / stem
                hit = exact if exact.is_file() else next(iter(sorted(self.media_dir.glob(f"{Path(stem).stem}.*"))), None)
            self.found[name] = hit
            if hit is None:
                log.info("media '%s': no file for it%s; drawn as a labelled box", name,
                         f" in {self.media_dir}" if self.media_dir else " (give --media DIR)")
        return self.found[name]

    def video(self, path: Path, t: float) -> np.ndarray:
        """The frame at `t` from the reader of `path` already nearest before `t` (a new one where none is)."""
        readers = self.readers.setdefault(path, [])
        near = [r for r in readers if r.time - TIME_EPS <= t <= r.time + SEEK_AHEAD_S]
        if near:
            reader = max(near, key=lambda r: r.time)
        elif len(readers) < READERS_PER_MEDIA:
            reader = VideoReader(path)
            readers.append(reader)
        else:
            reader = min(readers, key=lambda r: abs(r.time - t))
        return reader.frame_at(t)

    def picture(self, span: ClipSpan, t: float) -> np.ndarray | None:
        """The clip's picture at edit time `t`, or None for a labelled box."""
        offset = (t - span.start) * (span.timing.speed if span.timing is not None else 1.0)
        source = (span.timing.source_start if span.timing is not None else 0.0) + offset
        if span.is_main:
            self.tally["recording_frames"] += 1
            return self.video(self.recording, source)
        path = self.file_of(span.media)
        if path is None:
            self.tally[f"box:{span.media or 'unnamed'}"] += 1
            return None
        if path.suffix.lower() in IMAGE_SUFFIXES:
            if path not in self.images:
                import cv2

                bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if bgr is None:
                    raise RenderError(f"{path}: not a readable image (media '{span.media}')")
                self.images[path] = bgr[..., ::-1].copy()
            self.tally["media_frames"] += 1
            return self.images[path]
        self.tally["media_frames"] += 1
        return self.video(path, max(source, 0.0))

    def close(self) -> None:
        for readers in self.readers.values():
            for r in readers:
                r.close()


def _label_box(name: str, size: tuple[int, int]) -> np.ndarray:
    import cv2

    w, h = size
    box = np.full((h, w, 3), 48, np.uint8)
    cv2.rectangle(box, (0, 0), (w - 1, h - 1), (230, 200, 40), max(2, h // 60))
    scale = max(0.5, min(w, h) / 300)
    cv2.putText(box, name or "media", (w // 20, h // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (240, 240, 240),
                max(1, int(scale * 2)), cv2.LINE_AA)
    return box


def composite(canvas: np.ndarray, picture: np.ndarray, params: dict[str, float]) -> None:
    """Draw `picture` onto `canvas` (both RGB uint8) where `params` place it (``io.placement``)."""
    import cv2

    H, W = canvas.shape[:2]
    p = place(params, (picture.shape[1], picture.shape[0]), (W, H))
    if p.empty:
        return
    (sx0, sy0, sx1, sy1), (dx0, dy0, dx1, dy1) = p.source, p.dest
    if picture.shape == canvas.shape and p.source == (0, 0, W, H) and max(map(abs, (dx0, dy0, dx1 - W, dy1 - H))) < 1e-6:
        canvas[:] = picture  # the recording full frame, as most of an edit shows it: no resampling
        return
    fx, fy = (sx1 - sx0) / (dx1 - dx0), (sy1 - sy0) / (dy1 - dy0)  # source pixels per output pixel
    cx0, cy0 = max(int(math.floor(dx0 + 0.5)), 0), max(int(math.floor(dy0 + 0.5)), 0)  # pixel centres inside
    cx1, cy1 = min(int(math.floor(dx1 + 0.5)), W), min(int(math.floor(dy1 + 0.5)), H)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    # each output pixel centre back to the media: one affine warp of the visible part, no whole-frame resize
    m = np.array([[fx, 0.0, sx0 + (cx0 + 0.5 - dx0) * fx - 0.5], [0.0, fy, sy0 + (cy0 + 0.5 - dy0) * fy - 0.5]])
    interp = cv2.INTER_AREA if fx > 1 or fy > 1 else cv2.INTER_LINEAR
    canvas[cy0:cy1, cx0:cx1] = cv2.warpAffine(picture, m, (cx1 - cx0, cy1 - cy0), flags=interp | cv2.WARP_INVERSE_MAP,
                                              borderMode=cv2.BORDER_REPLICATE)


# --------------------------------------------------------------------------- the render


def _audio_plan(clips) -> list[tuple[float, float, float]]:
    """Where the recording sounds in the edit: its audio clips, else its video clips; first use wins."""
    sound = [c for c in clips.recording if not c.video] or [c for c in clips.recording if c.video]
    plan, covered = [], []
    for c in sorted(sound, key=lambda c: c.start):
        if abs(c.timing.speed - 1.0) > 1e-6:
            log.warning("a clip of the recording at %.2fx speed sounds as silence in the render", c.timing.speed)
            continue
        a = max([c.start] + [e for s, e in covered if s <= c.start < e])
        if c.end > a:
            plan.append((a, c.end, c.timing.source_start + (a - c.start)))
            covered.append((a, c.end))
    return plan


def _recording_info(path: Path) -> tuple[Fraction, tuple[int, int], float, bool]:
    """(frame rate, (w, h), duration s, has sound) of the recording; RenderError where it cannot be read."""
    av = _av()
    if not path.is_file():
        raise RenderError(f"{path}: recording not found; give the video file the edit was made of (--recording)")
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise RenderError(f"{path}: the recording holds no video stream")
            v = c.streams.video[0]
            rate = v.average_rate or v.guessed_rate or v.base_rate
            duration = (float(v.duration * v.time_base) if v.duration else
                        float(c.duration) / 1e6 if c.duration else None)
            if duration is None:  # no duration in the header: the last frame's time
                duration = max((float(f.time) for f in c.decode(v) if f.time is not None), default=0.0)
            size = (v.codec_context.width, v.codec_context.height)
            has_sound = bool(c.streams.audio)
    except av.error.FFmpegError as exc:
        raise RenderError(f"{path}: not a readable video ({type(exc).__name__}: {exc})") from exc
    if not rate or not size[0] or not size[1]:
        raise RenderError(f"{path}: the recording's video stream gives no frame rate or size")
    return Fraction(rate), size, duration, has_sound


def recording_rate(path: str | Path) -> float:
    """The frame rate of a recording's video (29.97 as 30000/1001), for an export at the recording's rate."""
    return float(_recording_info(Path(path))[0])


def render_edit(edit: str | Path, recording: str | Path, out: str | Path, media_dir: str | Path | None = None,
                recording_name: str | None = None, timeline: TimelineParams = TimelineParams(), progress: bool = True,
                crf: int = 20) -> dict[str, Any]:
    """Render `edit` (any timeline format import reads) of `recording` to the video `out`; returns a report.

    The recording's clips are those of media named `recording_name` (default: the file's stem,
    as ``trackfusion edit`` names it), else of the main asset class."""
    av = _av()
    edit, recording, out = Path(edit), Path(recording), Path(out)
    fmt = CONTAINERS.get(out.suffix.lower())
    if fmt is None:
        raise RenderError(f"{out}: render writes {', '.join(CONTAINERS)}; give --out such a file")
    rate, size, duration, has_sound = _recording_info(recording)
    clips = read_clips(edit, recording_name or recording.stem, timeline)
    spans = sorted(clips.spans, key=lambda s: (s.slot, s.start))
    past = [s.timing.source_start + (s.end - s.start) * s.timing.speed for s in spans
            if s.is_main and s.timing is not None]
    plan = _audio_plan(clips) if has_sound else []
    reach = max(past + [b - a + s for a, b, s in plan], default=0.0)
    if reach > duration + 1.5 / float(rate):
        raise RenderError(f"{edit}: the edit plays {recording} up to {reach:.2f} s, past its end at {duration:.2f} s: "
                          "is it the edit of another recording? (--recording)")
    length = max([clips.length] + [b for _, b, _ in plan])
    n_frames = int(round(length * rate))
    if n_frames < 1:
        raise RenderError(f"{edit}: the edit is empty (no frame to render)")
    W, H = size[0] - size[0] % 2, size[1] - size[1] % 2  # yuv420p needs even sides
    tally: Counter = Counter()
    media = _Media(recording, Path(media_dir) if media_dir else None, tally)
    audio = AudioCutter(recording, plan) if has_sound else None
    boxes: dict[tuple[str, tuple[int, int]], np.ndarray] = {}
    by_slot: dict[int, list[ClipSpan]] = {}
    for s in spans:
        by_slot.setdefault(s.slot, []).append(s)
    cursor = {slot: 0 for slot in by_slot}
    try:
        with atomic_path(out) as tmp, av.open(str(tmp), "w", format=fmt) as container:
            vstream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=rate)
            vstream.width, vstream.height, vstream.pix_fmt = W, H, "yuv420p"
            vstream.options = {"crf": str(crf), "preset": "veryfast"}
            astream = None
            if audio is not None:
                astream = container.add_stream("aac", rate=audio.rate, layout=audio.layout)
            sample_at = 0
            for k in tqdm(range(n_frames), desc=f"render {out.name}", unit="frame", disable=not progress, leave=False):
                t = k / rate  # edit time, exact
                tf = float(t)
                canvas = np.zeros((H, W, 3), np.uint8)
                for slot in sorted(by_slot):
                    row, i = by_slot[slot], cursor[slot]
                    while i < len(row) and row[i].end <= tf + TIME_EPS:
                        i += 1
                    cursor[slot] = i
                    if i == len(row) or row[i].start > tf + TIME_EPS:
                        continue
                    span = row[i]
                    params = {p: float(v) for p, v in zip(CLIP_PARAMS, span.values[2:])}
                    picture = media.picture(span, tf)
                    if picture is None:
                        key = (span.media, (schema.FRAME_WIDTH // 4, schema.FRAME_HEIGHT // 4))
                        picture = boxes.setdefault(key, _label_box(span.media, key[1]))
                    composite(canvas, picture, params)
                frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
                frame.pts = k
                frame.time_base = Fraction(1) / rate
                for packet in vstream.encode(frame):
                    container.mux(packet)
                if astream is not None:  # sound up to the next frame's edit time: the two never drift apart
                    upto = int(round((k + 1) / rate * audio.rate))
                    if upto > sample_at:
                        chunk = audio.take(upto - sample_at)
                        aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=audio.layout)
                        aframe.sample_rate, aframe.pts = audio.rate, sample_at
                        aframe.time_base = Fraction(1, audio.rate)
                        for packet in astream.encode(aframe):
                            container.mux(packet)
                        sample_at = upto
            for stream in [vstream] + ([astream] if astream is not None else []):
                for packet in stream.encode(None):
                    container.mux(packet)
    finally:
        media.close()
        if audio is not None:
            audio.close()
    boxed = {k[4:]: v for k, v in tally.items() if k.startswith("box:")}
    report = {"file": str(out), "edit": str(edit), "recording": str(recording), "frames": n_frames,
              "fps": float(rate), "size": [W, H], "duration_s": round(n_frames / float(rate), 3),
              "sound": audio is not None, "sound_stretches": len(plan), "recording_frames": tally["recording_frames"],
              "media_frames": tally["media_frames"], "boxed_media": boxed}
    log.info("%s: %d frames (%.1f s at %.3f fps, %dx%d)%s%s", out, n_frames, n_frames / float(rate), float(rate),
             W, H, ", the recording's sound cut along" if audio is not None else ", no sound",
             f"; drawn as boxes: {', '.join(sorted(boxed))}" if boxed else "")
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("edit", type=Path, help="the edit: .otio, .xml (FCP 7 / Premiere), .edl or .fcpxml")
    parser.add_argument("--recording", required=True, type=Path, help="the video file the edit was made of")
    parser.add_argument("--out", required=True, type=Path, help="the video to write (.mp4, .mov, .mkv)")
    parser.add_argument("--media", type=Path, help="folder of the edit's other media (images, titles, a face cam "
                                                   "file), found by name; what is missing is a labelled box")
    parser.add_argument("--recording-name", help="the recording's media name in the edit (default: its file stem)")
    parser.add_argument("--params", default=None, type=Path, help="params file (timeline: how media names map to "
                                                                  "asset classes)")


def run(args: argparse.Namespace) -> int:
    render_edit(args.edit, args.recording, args.out, args.media, args.recording_name, command_params(args.params).timeline)
    return 0
