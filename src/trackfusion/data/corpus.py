"""The aligned corpus on disk: contiguous arrays per modality plus an index of videos.

Layout of a corpus folder (``data/aligned``, ``data/normalized``)::

    index.json     {"version", "fps", "total_frames", "arrays": {name: {dtype, width}},
                    "videos": [{video_id, offset, length, split, start_time}], "meta": {...}}
    audio.bin      (N, 5)   float32   aligned audio inputs (schema.AUDIO_INPUTS order)
    visual.bin     (N, 10)  float32   aligned visual scalars (schema.VISUAL_SCALARS)
    clip.bin       (N, 512) float16   CLIP embedding; float16 halves the largest array
    track.bin      (N, 180) float32   track frames (schema.TRACK_PARAMS per track)
    mask.bin       (N, 3)   bool      modality availability [audio, visual, track]
    times.bin      (N, 1)   float64   frame times in seconds of the source recording
    kept.bin       (N, 1)   bool      the frame plays in the edit (the selection's target)

Rows of one video are contiguous (``offset`` .. ``offset + length``) and cover its whole
recording, so selection reads every frame; the layout reads the edit, its kept frames in
order (``Corpus.edit_rows``: a dropped frame is neither its input nor its target). Arrays are raw
C-order binaries so the writer can stream video after video without knowing the
total in advance (peak memory does not grow with the corpus), and readers memory-map
them. The whole folder is written to a temporary sibling and renamed into place.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np

from trackfusion import schema
from trackfusion.atomic import atomic_dir

INDEX_FILE = "index.json"
CORPUS_VERSION = 2
SPLITS = ("train", "val", "test")

#: name -> (dtype, width); the order is the order of the files' documentation above
ARRAYS: dict[str, tuple[str, int]] = {
    "audio": ("float32", schema.AUDIO_WIDTH),
    "visual": ("float32", schema.VISUAL_SCALAR_WIDTH),
    "clip": ("float16", schema.CLIP_DIM),
    "track": ("float32", schema.TRACK_WIDTH),
    "mask": ("bool", len(schema.MODALITIES)),
    "times": ("float64", 1),
    "kept": ("bool", 1),
}


@dataclass(frozen=True)
class VideoEntry:
    video_id: str
    offset: int
    length: int
    split: str
    start_time: float
    edit_length: int  # frames the edit keeps (== length when it removes nothing)


def assign_splits(video_ids: list[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, str]:
    """Split by video, deterministically from the seed and each video id.

    Videos are ordered by a hash of (seed, id), so a video keeps its split when others
    are added or removed only as far as the counts allow. With three or more videos,
    val and test get at least one each.
    """
    order = sorted(video_ids, key=lambda v: hashlib.sha256(f"{seed}:{v}".encode()).hexdigest())
    n = len(order)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    if n >= 3:
        n_test = max(n_test, 1 if test_fraction > 0 else 0)
        n_val = max(n_val, 1 if val_fraction > 0 else 0)
    n_test = min(n_test, max(n - 1, 0))
    n_val = min(n_val, max(n - 1 - n_test, 0))
    splits = {}
    for i, vid in enumerate(order):
        splits[vid] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return splits


class CorpusWriter:
    """Stream videos into a corpus folder; the folder appears only when all is written.

    >>> with CorpusWriter(out_dir, fps=10) as w:
    ...     w.append("vid", "train", 0.0, audio=..., visual=..., clip=..., track=..., mask=..., times=...)
    """

    def __init__(self, out_dir: str | Path, fps: float, meta: dict[str, Any] | None = None):
        self.out_dir = Path(out_dir)
        self.fps = fps
        self.meta = dict(meta or {})
        self.videos: list[VideoEntry] = []
        self.total = 0
        self._stack = ExitStack()
        self._files: dict[str, BinaryIO] = {}

    def __enter__(self) -> "CorpusWriter":
        self._tmp = self._stack.enter_context(atomic_dir(self.out_dir))
        for name in ARRAYS:
            self._files[name] = self._stack.enter_context(open(self._tmp / f"{name}.bin", "wb"))
        return self

    def append(self, video_id: str, split: str, start_time: float, **arrays: np.ndarray) -> None:
        schema.check_video_id(video_id)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        length = len(arrays["track"])
        arrays.setdefault("kept", np.ones((length, 1), bool))  # an edit that removes nothing
        if set(arrays) != set(ARRAYS):
            raise ValueError(f"append needs arrays {sorted(ARRAYS)} (kept optional), got {sorted(arrays)}")
        for name, (dtype, width) in ARRAYS.items():
            a = np.ascontiguousarray(arrays[name], dtype=dtype).reshape(length, width)  # (T, width)
            self._files[name].write(a.tobytes())
        kept = int(np.count_nonzero(arrays["kept"]))
        self.videos.append(VideoEntry(video_id, self.total, length, split, float(start_time), kept))
        self.total += length

    def extra_file(self, name: str) -> Path:
        """Path for an extra file (e.g. ``normalization.json``) inside the folder being written.

        It appears together with the corpus, or not at all. Only valid inside ``with``.
        """
        if "/" in name or "\\" in name or name in ("", ".", "..", INDEX_FILE) or name in {f"{a}.bin" for a in ARRAYS}:
            raise ValueError(f"extra file name must be a plain file name other than the corpus' own, got {name!r}")
        return self._tmp / name

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> bool | None:
        if exc_type is None:
            for f in self._files.values():
                f.flush()
            index = {
                "version": CORPUS_VERSION,
                "fps": self.fps,
                "total_frames": self.total,
                "arrays": {name: {"dtype": d, "width": w} for name, (d, w) in ARRAYS.items()},
                "videos": [asdict(v) for v in self.videos],
                "meta": self.meta,
            }
            (self._tmp / INDEX_FILE).write_text(json.dumps(index, indent=1, ensure_ascii=False), encoding="utf-8")
        return self._stack.__exit__(exc_type, exc, tb)


class Corpus:
    """Read-only view of a corpus folder; arrays are memory-mapped, never loaded whole."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        index_path = self.path / INDEX_FILE
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{index_path}: no corpus index; run the align stage first") from None
        if index.get("version") != CORPUS_VERSION:
            raise ValueError(f"{index_path}: corpus version {index.get('version')}, expected {CORPUS_VERSION}")
        self.fps = float(index["fps"])
        self.total_frames = int(index["total_frames"])
        self.meta: dict[str, Any] = index.get("meta", {})
        self.videos = [VideoEntry(**v) for v in index["videos"]]
        for v in self.videos:
            try:
                schema.check_video_id(v.video_id)
            except ValueError as e:
                raise ValueError(f"{index_path}: {e}") from None
        self._by_id = {v.video_id: v for v in self.videos}
        self._arrays: dict[str, np.ndarray] = {}

    def array(self, name: str) -> np.ndarray:
        """The whole (N, width) array `name`, memory-mapped read-only."""
        if name not in self._arrays:
            dtype, width = ARRAYS[name]
            if self.total_frames == 0:
                self._arrays[name] = np.zeros((0, width), dtype=dtype)
            else:
                self._arrays[name] = np.memmap(
                    self.path / f"{name}.bin", dtype=dtype, mode="r", shape=(self.total_frames, width)
                )
        return self._arrays[name]

    def video(self, video_id: str) -> VideoEntry:
        return self._by_id[video_id]

    def video_arrays(self, video_id: str) -> dict[str, np.ndarray]:
        """Slices (views, no copy) of every array for one video."""
        v = self._by_id[video_id]
        return {name: self.array(name)[v.offset : v.offset + v.length] for name in ARRAYS}

    def edit_rows(self, video_id: str) -> np.ndarray:
        """(edit_length,) int64 corpus rows of the video's kept frames, in edit order (recording order:
        a highlight edit plays what it keeps as it was recorded)."""
        v = self._by_id[video_id]
        return v.offset + np.flatnonzero(self.array("kept")[v.offset : v.offset + v.length, 0])

    def edit_arrays(self, video_id: str) -> dict[str, np.ndarray]:
        """Every array of one video over its kept frames only (copies where it drops frames)."""
        v = self._by_id[video_id]
        if v.edit_length == v.length:
            return self.video_arrays(video_id)
        rows = self.edit_rows(video_id)
        return {name: self.array(name)[rows] for name in ARRAYS}

    def split_videos(self, split: str) -> list[VideoEntry]:
        return [v for v in self.videos if v.split == split]
