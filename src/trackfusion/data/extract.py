"""`trackfusion extract`: the feature tables of the data contract made from a recording.

Each recording is decoded once, in one pass over its packets (PyAV), never held whole:

- audio, resampled to 16 kHz mono: ``audio_energy_rms`` per ``extract.audio_window_s``
  (0.1 s) window; ``audio_is_speaking`` where silero-vad (its model ships in its package)
  gives a speech probability above ``extract.vad_threshold`` in the window;
  ``silence_duration_ms`` since the last speech; ``text_word`` and ``text_is_active`` from
  a transcriber when ``extract.transcriber`` names one (a faster-whisper model, or your
  own ``package.module:factory``), fed the audio in chunks as it streams, and
  ``speaker_id`` from it where it diarizes (words with a ``speaker``); else empty, as the
  contract allows, and counted;
- video, every ``extract.visual_every``-th frame scaled to ``extract.frame_width``:
  ``scene_change`` from PySceneDetect's content score (``ContentDetector``: 0 for a still,
  1 at or above twice its cut threshold), ``visual_motion`` the mean absolute difference
  from the previous sampled frame (0..1), ``saliency_x/y`` the centre of OpenCV's
  spectral-residual saliency map (contrib), ``face_count`` and the largest face's centre
  and size from OpenCV's frontal-face Haar cascade (shipped in its wheel), mouth and
  eyebrow fields empty (the detector cannot give them); ``clip_0..511`` the image
  embedding of a CLIP vision model (transformers' ``CLIPVisionModelWithProjection``, the
  weights ``extract.clip_model`` from the user's Hugging Face cache or a local folder,
  never downloaded here), computed every ``extract.clip_every_s`` and held between, as
  real files hold them; empty with ``--no-clip``. (open_clip needs torchvision, whose
  wheel cannot load its operators beside the pinned torch 2.13.0 CPU build.)

Tables are written atomically as ``<stem>_features.csv`` and ``<stem>_visual_features.csv``
in ``--out/features/`` (the raw layout of SPEC section 3), and pass the project's readers.
A file that cannot be decoded, has no audio or no video, or no frames is one error line
naming it; the other recordings go on.

    trackfusion extract recordings/*.mp4 --out my_raw --no-clip
"""
from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from trackfusion import schema
from trackfusion.atomic import atomic_path
from trackfusion.io.features import write_audio_csv, write_visual_csv
from trackfusion.params import ExtractParams, command_params

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
VAD_CHUNK = 512  # samples per silero-vad step at 16 kHz (32 ms)
#: where each column of the tables comes from (printed in the summary)
SOURCES: dict[str, str] = {
    "audio_energy_rms": "RMS of the 16 kHz mono samples per window (PyAV decode + resample)",
    "audio_is_speaking": "silero-vad speech probability > extract.vad_threshold within the window",
    "silence_duration_ms": "time since the last speech window",
    "speaker_id": "empty: no diarizing transcriber configured (extract.transcriber)",
    "text_is_active": "empty: no transcriber configured (extract.transcriber)",
    "text_word": "empty: no transcriber configured (extract.transcriber)",
    "scene_change": "PySceneDetect ContentDetector score / (2 x its threshold), clipped to 1",
    "visual_motion": "mean |frame - previous sampled frame| / 255 (grey)",
    "saliency_x": "OpenCV StaticSaliencySpectralResidual: saliency-weighted centre x (0..1)",
    "saliency_y": "OpenCV StaticSaliencySpectralResidual: saliency-weighted centre y (0..1)",
    "face_count": "OpenCV Haar frontal-face cascade: faces found (every extract.face_every_s, held between)",
    "face_center_x": "largest face's centre x (0..1), empty without a face",
    "face_center_y": "largest face's centre y (0..1), empty without a face",
    "face_size": "largest face's width / frame width, empty without a face",
    "face_mouth_open": "empty: the detector cannot give it",
    "face_eyebrow_raise": "empty: the detector cannot give it",
    "clip_0..511": "CLIP vision model image embedding (extract.clip_model) every extract.clip_every_s, held between",
}
NO_CLIP = "empty (--no-clip)"


#: the recordings `find_recordings` picks up in a folder (any container FFmpeg reads can be passed by name)
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".flv", ".ts", ".mts")


def find_recordings(folder: str | Path) -> list[Path]:
    """The recordings directly in `folder`, by name; a missing folder is an error naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: recordings folder not found (data.videos_dir)")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


class ExtractError(ValueError):
    """A recording cannot be turned into feature tables; the message names the file."""


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ExtractError(f"{module} is not installed: pip install -e '.[extract]' ({exc})") from exc


@dataclass
class _Transcript:
    """Words and their times from a speech-to-text model with faster-whisper's interface
    (``model.transcribe(audio, word_timestamps=True, ...) -> (segments, info)``, each segment
    with ``.words`` holding ``start``, ``end``, ``word`` and, from a diarizing transcriber, a
    ``speaker``), fed ``chunk`` samples at a time as the audio streams in: the recording is
    never held whole."""

    model: Any
    chunk: int  # samples per transcription call
    pending: list[np.ndarray] = field(default_factory=list)
    n_pending: int = 0
    offset_s: float = 0.0
    words: list[tuple[float, float, str, str]] = field(default_factory=list)  # start, end, word, speaker

    def add(self, samples: np.ndarray) -> None:
        self.pending.append(samples)
        self.n_pending += len(samples)
        while self.n_pending >= self.chunk:
            audio = np.concatenate(self.pending)
            self._run(audio[: self.chunk])
            rest = audio[self.chunk :]
            self.pending, self.n_pending = [rest], len(rest)

    def finish(self) -> None:
        if self.n_pending:
            self._run(np.concatenate(self.pending))
            self.pending, self.n_pending = [], 0

    def _run(self, audio: np.ndarray) -> None:
        segments, _ = self.model.transcribe(np.ascontiguousarray(audio, np.float32), word_timestamps=True, beam_size=1)
        for segment in segments:
            for w in getattr(segment, "words", None) or []:
                if str(w.word).strip():
                    speaker = getattr(w, "speaker", None)
                    self.words.append((self.offset_s + float(w.start), self.offset_s + float(w.end), str(w.word).strip(),
                                       "" if speaker is None else str(speaker)))  # fmt: skip
        self.offset_s += len(audio) / SAMPLE_RATE

    def columns(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row time: the word being spoken ("" between words), whether one is, and its speaker ("" unknown)."""
        words = sorted(self.words)
        starts = np.array([w[0] for w in words])
        ends = np.array([w[1] for w in words])
        i = np.searchsorted(starts, t, side="right") - 1  # the last word that began at or before t
        active = (i >= 0) & (t < ends[np.maximum(i, 0)] if len(words) else np.zeros(len(t), bool))
        text = np.array([words[j][2] if a else "" for j, a in zip(i.tolist(), active.tolist())], dtype=object)
        speaker = np.array([words[j][3] if a else "" for j, a in zip(i.tolist(), active.tolist())], dtype=object)
        return text, active.astype(float), speaker


@dataclass
class _Audio:
    """Streaming audio measures: windows of RMS and voice activity (and the words, with a transcriber)."""

    window: int  # samples per row
    vad: Any  # the silero-vad model
    threshold: float
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    vad_pending: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    rms: list[float] = field(default_factory=list)
    vad_probs: list[float] = field(default_factory=list)  # one per VAD_CHUNK
    transcript: _Transcript | None = None

    def add(self, samples: np.ndarray) -> None:
        import torch

        if self.transcript is not None:
            self.transcript.add(samples)
        self.pending = np.concatenate([self.pending, samples])
        n = len(self.pending) // self.window
        if n:
            rows = self.pending[: n * self.window].reshape(n, self.window).astype(np.float64)
            self.rms += np.sqrt((rows**2).mean(axis=1)).tolist()
            self.pending = self.pending[n * self.window :]
        self.vad_pending = np.concatenate([self.vad_pending, samples])
        m = len(self.vad_pending) // VAD_CHUNK
        with torch.no_grad():
            for i in range(m):
                chunk = torch.from_numpy(np.ascontiguousarray(self.vad_pending[i * VAD_CHUNK : (i + 1) * VAD_CHUNK]))
                self.vad_probs.append(float(self.vad(chunk, SAMPLE_RATE)))
        self.vad_pending = self.vad_pending[m * VAD_CHUNK :]

    def columns(self, window_s: float) -> dict[str, Any]:
        n = len(self.rms)
        t = np.arange(n) * window_s
        probs = np.asarray(self.vad_probs)
        speaking = np.zeros(n, bool)
        if len(probs):
            chunk_rows = (np.arange(len(probs)) * VAD_CHUNK // self.window).astype(int)
            keep = chunk_rows < n
            np.maximum.at(speaking, chunk_rows[keep], probs[keep] > self.threshold)
        silence = np.zeros(n)
        last = -math.inf
        for i in range(n):
            last = t[i] if speaking[i] else last
            silence[i] = 0.0 if speaking[i] else (t[i] - last) * 1000 if math.isfinite(last) else t[i] * 1000
        empty_text = np.array([""] * n, dtype=object)
        text, text_active, speaker = empty_text, np.full(n, np.nan), empty_text  # empty: counted by the readers
        if self.transcript is not None:
            self.transcript.finish()
            text, text_active, speaker = self.transcript.columns(t)
        return {
            schema.TIME: t, "audio_energy_rms": np.asarray(self.rms), "audio_is_speaking": speaking.astype(float),
            "silence_duration_ms": silence, "speaker_id": speaker, "text_is_active": text_active,
            "text_word": text,
        }  # fmt: skip


@dataclass
class _Visual:
    """Visual measures of the sampled frames."""

    width: int
    cv2: Any
    detector: Any  # scenedetect ContentDetector
    saliency: Any
    faces: Any
    fps: float
    rows: dict[str, list[float]] = field(default_factory=lambda: {
        n: [] for n in [schema.TIME] + [c.name for c in schema.VISUAL_SCALARS]})
    face_every_s: float = 0.5
    prev: np.ndarray | None = None
    index: int = 0
    face: tuple[float, ...] | None = None  # the last detection: count, centre x, y, size
    face_time: float = -math.inf

    def add(self, bgr: np.ndarray, time_s: float) -> None:
        from scenedetect import FrameTimecode

        cv2 = self.cv2
        h, w = bgr.shape[:2]
        small = cv2.resize(bgr, (self.width, max(1, round(h * self.width / w))), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        # the detector's per-frame content score (its `content_val` metric); process_frame would also
        # run its cut logic, which the model does not need: the model learns its own threshold
        score = self.detector._calculate_frame_score(FrameTimecode(self.index, self.fps), small)
        self.index += 1
        threshold = float(getattr(self.detector, "_threshold", 27.0))
        scene = 0.0 if score is None or self.prev is None else min(1.0, float(score) / (2 * threshold))
        motion = 0.0 if self.prev is None else float(np.abs(grey.astype(np.int16) - self.prev).mean() / 255.0)
        self.prev = grey.astype(np.int16)
        ok, sal = self.saliency.computeSaliency(small)
        sal = np.asarray(sal, np.float64) if ok else np.ones(grey.shape)
        total = sal.sum()
        h_s, w_s = sal.shape  # the centre from the map's row and column sums: no coordinate grids per frame
        sx = float(sal.sum(axis=0) @ np.arange(w_s) / total / max(w_s - 1, 1)) if total > 0 else 0.5
        sy = float(sal.sum(axis=1) @ np.arange(h_s) / total / max(h_s - 1, 1)) if total > 0 else 0.5
        if self.face is None or time_s - self.face_time >= self.face_every_s:  # held between detections
            side = max(12, grey.shape[1] // 16)  # a face cam is not smaller than 1/16 of the frame
            found = self.faces.detectMultiScale(grey, scaleFactor=1.2, minNeighbors=5, minSize=(side, side))
            found = list(found) if len(found) else []
            if found:
                x, y, fw, fh = max(found, key=lambda f: f[2] * f[3])
                place = ((x + fw / 2) / grey.shape[1], (y + fh / 2) / grey.shape[0], fw / grey.shape[1])
            else:
                place = (math.nan, math.nan, math.nan)
            self.face, self.face_time = (float(len(found)), *place), time_s
        values = [time_s, scene, motion, sx, sy, *self.face, math.nan, math.nan]
        for name, v in zip(self.rows, values):
            self.rows[name].append(v)


def load_clip(name: str) -> Any:
    """The CLIP vision model `name` (a Hugging Face id in the user's cache, or a folder), eval, on CPU.

    Never downloads: a missing model is one ExtractError line saying how to get it.
    """
    transformers = _require("transformers")
    try:
        model = transformers.CLIPVisionModelWithProjection.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ExtractError(
            f"CLIP weights {name!r} are not in the Hugging Face cache or a local folder: fetch them once "
            f"(`hf download {name}` on a machine with a network) or set extract.clip_model to a folder holding "
            f"them, or run with --no-clip ({str(exc).splitlines()[0][:200]})"
        ) from exc
    if model.config.projection_dim != schema.CLIP_DIM:
        raise ExtractError(f"CLIP model {name!r} gives {model.config.projection_dim}-dimensional embeddings; "
                           f"the data contract has {schema.CLIP_DIM} (ViT-B/32 or ViT-B/16)")  # fmt: skip
    return model.eval()


def load_transcriber(spec: str) -> Any:
    """The transcriber `spec` names: a faster-whisper model (a folder, or a name in the user's
    cache; never downloaded), or ``package.module:factory`` for your own (an object with
    faster-whisper's ``transcribe``). A missing one is one ExtractError line."""
    import importlib

    if ":" in spec and not Path(spec).exists():
        module, _, attr = spec.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)()
        except (ImportError, AttributeError) as exc:
            raise ExtractError(f"extract.transcriber {spec!r}: cannot load {attr} from {module} ({exc})") from exc
    faster_whisper = _require("faster_whisper")
    try:
        return faster_whisper.WhisperModel(spec, device="cpu", compute_type="int8", local_files_only=True)
    except Exception as exc:  # a missing or partial model folder raises several kinds of error
        raise ExtractError(
            f"extract.transcriber {spec!r} is not a faster-whisper model folder nor in the cache: fetch it once on a "
            f"machine with a network, or set extract.transcriber to '' ({str(exc).splitlines()[0][:200]})"
        ) from exc


@dataclass
class _Clip:
    """CLIP image embeddings every `every_s`, held between refreshes (float16 rows, as real files hold them)."""

    model: Any
    every_s: float
    vectors: list[np.ndarray] = field(default_factory=list)  # one per refresh
    hold: list[int] = field(default_factory=list)  # per sampled frame: the vector it holds
    last_time: float = -math.inf
    mean: np.ndarray = field(init=False)  # CLIP's image normalisation, as transformers defines it
    std: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

        self.mean, self.std = np.array(OPENAI_CLIP_MEAN, np.float32), np.array(OPENAI_CLIP_STD, np.float32)

    def pixels(self, bgr: np.ndarray, cv2: Any) -> np.ndarray:
        """CLIP's preprocessing: shortest side to the model's size (bicubic), centre crop, RGB, normalised."""
        size = int(self.model.config.image_size)
        h, w = bgr.shape[:2]
        scale = size / min(h, w)
        resized = cv2.resize(bgr, (max(size, round(w * scale)), max(size, round(h * scale))),
                             interpolation=cv2.INTER_CUBIC)  # fmt: skip
        top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
        rgb = resized[top : top + size, left : left + size, ::-1].astype(np.float32) / 255.0
        return ((rgb - self.mean) / self.std).transpose(2, 0, 1)[None]  # (1, 3, size, size)

    def add(self, bgr: np.ndarray, time_s: float, cv2: Any) -> None:
        if not self.vectors or time_s - self.last_time >= self.every_s:
            import torch

            with torch.no_grad():
                out = self.model(pixel_values=torch.from_numpy(np.ascontiguousarray(self.pixels(bgr, cv2))))
            self.vectors.append(out.image_embeds[0].float().numpy().astype(np.float16))
            self.last_time = time_s
        self.hold.append(len(self.vectors) - 1)


@dataclass
class ExtractResult:
    recording: str
    audio_rows: int
    visual_rows: int
    seconds: float
    files: list[str]
    clip_refreshes: int = 0  # CLIP embeddings computed (each held until the next)


def extract_recording(video: str | Path, out_dir: str | Path, params: ExtractParams, clip: bool = False,
                      progress: bool = True) -> ExtractResult:  # fmt: skip
    """Decode `video` once and write its two feature tables to ``out_dir/features/``."""
    video = Path(video)
    stem = schema.check_video_id(video.stem)
    if not video.is_file():
        raise ExtractError(f"{video}: no such file")
    clip_model = _cached(load_clip, params.clip_model) if clip else None
    transcriber = _cached(load_transcriber, params.transcriber) if params.transcriber else None
    av, cv2, cascade, detectors, silero = _libraries()
    try:
        container = av.open(str(video))
    except Exception as exc:  # PyAV raises its own error types for every kind of bad file
        raise ExtractError(f"{video}: not a readable recording ({type(exc).__name__}: {exc})") from exc
    with container:
        if not container.streams.audio:
            raise ExtractError(f"{video}: has no audio stream (the audio table needs one)")
        if not container.streams.video:
            raise ExtractError(f"{video}: has no video stream")
        a_stream, v_stream = container.streams.audio[0], container.streams.video[0]
        fps = float(v_stream.average_rate or v_stream.guessed_rate or 30)
        duration = float(container.duration / 1e6) if container.duration else None
        vad = silero.load_silero_vad()
        audio = _Audio(round(params.audio_window_s * SAMPLE_RATE), vad, params.vad_threshold, transcript=None if
                       transcriber is None else _Transcript(transcriber, round(params.transcribe_chunk_s * SAMPLE_RATE)))
        visual = _Visual(params.frame_width, cv2, detectors.ContentDetector(), 
                         cv2.saliency.StaticSaliencySpectralResidual_create(),
                         cv2.CascadeClassifier(str(cascade)),
                         fps / params.visual_every, face_every_s=params.face_every_s)  # fmt: skip
        clip_rows = None if clip_model is None else _Clip(clip_model, params.clip_every_s)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        frame_no = 0
        bar = tqdm(total=duration, desc=stem[:40], unit="s", disable=not progress, leave=False,
                   bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s")  # fmt: skip
        try:
            for packet in container.demux(a_stream, v_stream):
                for frame in packet.decode():
                    if packet.stream.type == "audio":
                        for out in resampler.resample(frame):
                            audio.add(out.to_ndarray().reshape(-1).astype(np.float32))
                    else:
                        if frame_no % params.visual_every == 0:
                            bgr = frame.to_ndarray(format="bgr24")
                            visual.add(bgr, float(frame.time or 0.0))
                            if clip_rows is not None:
                                clip_rows.add(bgr, float(frame.time or 0.0), cv2)
                            if frame.time is not None:
                                bar.n = min(float(frame.time), bar.total or math.inf)
                                bar.refresh()
                        frame_no += 1
            for out in resampler.resample(None):
                audio.add(out.to_ndarray().reshape(-1).astype(np.float32))
        except Exception as exc:
            raise ExtractError(f"{video}: decoding failed ({type(exc).__name__}: {exc})") from exc
        finally:
            bar.close()
    if not audio.rms or not visual.rows[schema.TIME]:
        raise ExtractError(f"{video}: no {'audio' if not audio.rms else 'video'} frames could be decoded")
    files = _write_tables(Path(out_dir), stem, audio.columns(params.audio_window_s), visual.rows, clip_rows)
    return ExtractResult(stem, len(audio.rms), len(visual.rows[schema.TIME]), len(audio.rms) * params.audio_window_s,
                         files, 0 if clip_rows is None else len(clip_rows.vectors))  # fmt: skip


def _libraries() -> tuple[Any, Any, Path, Any, Any]:
    """PyAV, OpenCV (contrib: saliency and the face cascade), PySceneDetect's detectors, silero-vad."""
    av, cv2 = _require("av"), _require("cv2")
    cascade = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / "haarcascade_frontalface_default.xml"
    if not hasattr(cv2, "saliency") or not cascade.is_file():
        raise ExtractError(f"OpenCV {cv2.__version__} lacks the saliency module or the face cascade: run "
                           "pip install --force-reinstall --no-deps 'opencv-contrib-python-headless<5' (another "
                           "OpenCV package, such as scenedetect's opencv-python, has replaced it)")
    return av, cv2, cascade, _require("scenedetect.detectors"), _require("silero_vad")


def _write_tables(out_dir: Path, stem: str, audio: dict[str, Any], visual: dict[str, list[float]],
                  clip_rows: _Clip | None) -> list[str]:  # fmt: skip
    """The audio and visual tables in ``out_dir/features/``, each written atomically."""
    folder = out_dir / schema.FEATURES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    audio_path, visual_path = folder / schema.audio_file_name(stem), folder / schema.visual_file_name(stem)
    with atomic_path(audio_path) as tmp:
        write_audio_csv(Path(tmp), audio)
    rows = {k: np.asarray(v, np.float64) for k, v in visual.items()}
    n = len(rows[schema.TIME])
    if clip_rows is None:  # one all-empty vector that every row points at
        clip_index, vectors = np.zeros(n, np.int64), np.full((1, schema.CLIP_DIM), np.nan)
    else:
        clip_index, vectors = np.asarray(clip_rows.hold, np.int64), np.stack(clip_rows.vectors)
    with atomic_path(visual_path) as tmp:
        write_visual_csv(Path(tmp), rows, clip_index, vectors)
    return [str(audio_path), str(visual_path)]


_MODELS: dict[tuple[str, str], Any] = {}


def _cached(load: Any, name: str) -> Any:
    """One model per process and name (CLIP, a transcriber), loaded on first use: a worker
    extracts several recordings."""
    key = (load.__name__, name)
    if key not in _MODELS:
        _MODELS[key] = load(name)
    return _MODELS[key]


def _extract_one(job: tuple[Path, Path, ExtractParams, bool]) -> ExtractResult | str:
    """One recording in a worker process: its result, or its error line."""
    import torch

    torch.set_num_threads(1)  # the pool runs one recording per core: torch (VAD, CLIP) must not oversubscribe
    video, out_dir, params, clip = job
    try:
        return extract_recording(video, out_dir, params, clip, progress=False)
    except ExtractError as exc:
        return str(exc)


def extract_recordings(videos: list[Path], out_dir: Path, params: ExtractParams, clip: bool = False,
                       progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Every recording, `extract.workers` at a time in a process pool (each decodes one file
    start to end); a bad one is logged in one line and counted, the others go on. No
    recordings (the extract stage before any are added) is an empty features folder."""
    import concurrent.futures
    import multiprocessing

    if clip and videos:  # a missing model is one line before any work, not one failure per recording
        _cached(load_clip, params.clip_model)
    if params.transcriber and videos:
        _cached(load_transcriber, params.transcriber)
    (Path(out_dir) / schema.FEATURES_DIR).mkdir(parents=True, exist_ok=True)  # no recordings: an empty folder
    jobs = [(Path(v), Path(out_dir), params, clip) for v in videos]
    workers = min(params.workers, len(jobs))
    if workers > 1:  # spawn: torch and PyAV hold threads that a forked child must not inherit
        _MODELS.clear()  # each worker loads its own; the check above need not hold a copy here meanwhile
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        with pool:
            results = list(tqdm(pool.map(_extract_one, jobs), total=len(jobs), desc="extract", unit="recording",
                                disable=not progress))  # fmt: skip
    else:  # one at a time, in this process, with a progress bar per recording
        results = []
        for job in tqdm(jobs, desc="extract", unit="recording", disable=not progress or len(jobs) < 2):
            try:
                results.append(extract_recording(*job, progress=progress))
            except ExtractError as exc:
                results.append(str(exc))
    done, failed = [], {}
    for (video, *_), result in zip(jobs, results):
        if isinstance(result, str):
            log.error("%s", result)
            failed[str(video)] = result
            continue
        done.append(result)
        log.info("%s: %d audio rows, %d visual rows (%.1f s)", video, result.audio_rows, result.visual_rows,
                 result.seconds)  # fmt: skip
    return {"recordings": len(videos), "extracted": [r.recording for r in done], "failed": failed,
            "rows": {r.recording: {"audio": r.audio_rows, "visual": r.visual_rows} for r in done},
            "sources": sources(clip, params.transcriber), "workers": workers}  # fmt: skip


def sources(clip: bool, transcriber: str = "") -> dict[str, str]:
    """Where each column comes from, with or without CLIP and a transcriber."""
    out = SOURCES if clip else {**SOURCES, "clip_0..511": NO_CLIP}
    if transcriber:
        out = {**out, "text_word": f"the word being spoken, from extract.transcriber ({transcriber})",
               "text_is_active": "1 while the transcriber's words are spoken, else 0",
               "speaker_id": "the speaker of the word being spoken, where the transcriber diarizes"}  # fmt: skip
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="+", type=Path, help="recordings (any format FFmpeg reads)")
    parser.add_argument("--out", required=True, type=Path, help="raw folder: tables go to OUT/features/")
    parser.add_argument("--params", default=None, type=Path, help="params file (extract.*; default: ./params.yaml, "
                                                                  "else the defaults)")
    parser.add_argument("--no-clip", action="store_true", help="leave the CLIP columns empty (counted)")


def run(args: argparse.Namespace) -> int:
    summary = extract_recordings(args.videos, args.out, command_params(args.params).extract, clip=not args.no_clip)
    width = max(len(k) for k in summary["sources"])
    print("column sources:\n" + "\n".join(f"  {k:<{width}}  {v}" for k, v in summary["sources"].items()))
    print(f"extracted {len(summary['extracted'])} of {summary['recordings']} recordings to {args.out}"
          + (f"; failed: {', '.join(summary['failed'])}" if summary["failed"] else ""))  # fmt: skip
    return 1 if summary["failed"] else 0
