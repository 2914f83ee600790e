"""``sequences.npz``: the editors' track frames of every video, written and read one video at a time.

The ``frames`` member is stored uncompressed, so a video's rows are reached by seeking
inside the zip member, never by loading the whole corpus.
"""
from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from trackfusion import schema
from trackfusion.atomic import atomic_path
from trackfusion.timemap import TimeMap

log = logging.getLogger(__name__)


class TrackSequenceError(ValueError):
    """A video's track sequence is broken; that video is skipped (SPEC section 8)."""


@dataclass(frozen=True)
class TrackData:
    """One video's track frames, where frame 0 sits on its recording's clock, and which frames
    the edit keeps (None: every frame, an edit that removes nothing)."""

    video_id: str
    start_time: float
    frames: np.ndarray  # (T, 180) float32
    kept: np.ndarray | None = None  # (T,) uint8, 1 = plays in the edit

    def __post_init__(self) -> None:
        if self.kept is None:
            return
        kept = np.asarray(self.kept)
        if kept.shape != (len(self.frames),) or not np.isin(kept, (0, 1)).all():
            raise ValueError(f"video '{self.video_id}': kept must be ({len(self.frames)},) of 0 and 1, "
                             f"got shape {kept.shape}")
        if np.any(np.asarray(self.frames)[kept == 0]):
            raise ValueError(f"video '{self.video_id}': a dropped frame (kept 0) must have all-zero track values")

    @property
    def kept_flags(self) -> np.ndarray:
        """(T,) uint8 kept flags, all ones when the edit removes nothing."""
        return np.ones(len(self.frames), np.uint8) if self.kept is None else np.asarray(self.kept, np.uint8)

    @property
    def removes(self) -> bool:
        """Whether the edit drops any frame of the recording."""
        return self.kept is not None and not np.asarray(self.kept).all()

    def time_map(self, fps: float) -> TimeMap:
        """The video's frame grid: frame ``i`` is recording time ``start_time + i / fps``."""
        return TimeMap(fps, self.start_time)


def _check_declared_sizes(path: Path) -> None:
    """TrackSequenceError if an .npy member of the .npz declares more data than it holds.

    np.load allocates what a member's header declares; a few MB of file could otherwise
    claim gigabytes and exhaust memory before any check runs.
    """
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
                held = info.file_size - f.tell()
            declared = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
            if declared > held:
                raise TrackSequenceError(
                    f"{path}: member {info.filename} declares {declared:,} bytes of data but holds {held:,}"
                )


class SequenceReader:
    """One video's track frames at a time from ``sequences.npz`` (layout in :mod:`schema`)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: track sequences not found (expected SPEC section 3 layout)")
        try:
            _check_declared_sizes(self.path)  # before anything is allocated from what the headers say
            with np.load(self.path, allow_pickle=False) as npz:
                missing = [k for k in schema.SEQUENCE_KEYS if k not in npz.files]
                if missing:
                    raise TrackSequenceError(
                        f"{self.path}: missing arrays {missing}; expected {list(schema.SEQUENCE_KEYS)}"
                    )
                self.video_ids = [str(v) for v in npz["video_ids"]]
                self.offsets = npz["offsets"].astype(np.int64)
                self.lengths = npz["lengths"].astype(np.int64)
                self.start_times = npz["start_times"].astype(np.float64)
                self._kept = npz[schema.SEQUENCE_KEPT].astype(np.uint8) if schema.SEQUENCE_KEPT in npz.files else None
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            if isinstance(exc, TrackSequenceError):
                raise
            raise TrackSequenceError(f"{self.path}: not a readable .npz file ({exc})") from None
        n = len(self.video_ids)
        if n == 0:  # caught here, in the first stage that reads it, not in training four stages later
            raise TrackSequenceError(f"{self.path}: holds no videos, so there is nothing to align or train on; "
                                     "check data.raw_dir in params.yaml")
        if not (len(self.offsets) == len(self.lengths) == len(self.start_times) == n):
            raise TrackSequenceError(
                f"{self.path}: video_ids, offsets, lengths and start_times must have equal lengths, got "
                f"{n}, {len(self.offsets)}, {len(self.lengths)}, {len(self.start_times)}"
            )
        if self._kept is not None and (self._kept.ndim != 1 or not np.isin(self._kept, (0, 1)).all()):
            raise TrackSequenceError(f"{self.path}: kept must be a 1-D array of 0 and 1 (1 = the frame plays in the edit)")
        if len(set(self.video_ids)) != n:
            raise TrackSequenceError(f"{self.path}: duplicate video ids")
        self._index = {v: i for i, v in enumerate(self.video_ids)}
        with zipfile.ZipFile(self.path) as zf, zf.open("frames.npy") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            self._data_start = f.tell()
        self._frames_shape, self._frames_dtype = shape, np.dtype(dtype)
        if fortran or len(shape) != 2:
            raise TrackSequenceError(f"{self.path}: frames must be a C-order 2-D array, got shape {shape}")
        if self._frames_dtype.kind not in "fiub":
            raise TrackSequenceError(f"{self.path}: frames must hold numbers, got dtype {self._frames_dtype}")

    def __len__(self) -> int:
        return len(self.video_ids)

    @property
    def width(self) -> int:
        """Columns of the stored frames (180 when the file follows the contract)."""
        return int(self._frames_shape[1])

    def start_time(self, video_id: str) -> float:
        return float(self.start_times[self._index[video_id]])

    def kept(self, video_id: str) -> np.ndarray:
        """(T,) uint8: 1 where the video's frame plays in the edit (all ones in a file without ``kept``)."""
        i = self._index[video_id]
        offset, length = int(self.offsets[i]), int(self.lengths[i])
        if self._kept is None:
            return np.ones(length, np.uint8)
        if offset + length > len(self._kept):
            raise TrackSequenceError(f"{self.path}: kept holds {len(self._kept)} flags, video '{video_id}' needs "
                                     f"rows {offset}..{offset + length}")
        return self._kept[offset : offset + length].copy()

    def track(self, video_id: str) -> TrackData:
        """One video's :class:`TrackData`; TrackSequenceError if its frames or kept flags are broken."""
        frames, kept = self.read(video_id), self.kept(video_id)
        try:  # TrackData checks the contract (a dropped frame all zeros) in one place
            return TrackData(video_id, self.start_time(video_id), frames, None if kept.all() else kept)
        except ValueError as exc:
            raise TrackSequenceError(f"{self.path}: {exc}") from None

    def read(self, video_id: str) -> np.ndarray:
        """Track frames ``(T, 180)`` float32 of one video; TrackSequenceError if broken."""
        i = self._index[video_id]
        offset, length = int(self.offsets[i]), int(self.lengths[i])
        rows, width = self._frames_shape
        if width != schema.TRACK_WIDTH:
            raise TrackSequenceError(
                f"{self.path}: frames have {width} columns, expected {schema.TRACK_WIDTH} "
                f"({schema.NUM_TRACKS} tracks x {schema.NUM_TRACK_PARAMS} parameters)"
            )
        if length <= 0 or offset < 0 or offset + length > rows:
            raise TrackSequenceError(
                f"{self.path}: video '{video_id}' rows {offset}..{offset + length} outside frames (0..{rows})"
            )
        itemsize = self._frames_dtype.itemsize
        with zipfile.ZipFile(self.path) as zf, zf.open("frames.npy") as f:
            f.seek(self._data_start + offset * width * itemsize)
            buf = f.read(length * width * itemsize)
        frames = np.frombuffer(buf, dtype=self._frames_dtype).reshape(length, width).astype(np.float32)
        bad = ~np.isfinite(frames)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise TrackSequenceError(f"{self.path}: video '{video_id}' has non-finite track values (frame {row})")
        return frames


def write_sequences(path: str | Path, videos: Sequence[TrackData]) -> None:
    """Write every video's :class:`TrackData` as sequences.npz, atomically. ``kept`` is written
    only when some video drops frames, so a corpus that removes nothing is as it always was."""
    lengths = np.array([len(v.frames) for v in videos], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(videos) else lengths
    frames = (
        np.concatenate([np.asarray(v.frames, dtype=np.float32) for v in videos])
        if videos
        else np.zeros((0, schema.TRACK_WIDTH), np.float32)
    )
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:  # a file handle keeps numpy from appending ".npz" to the temp name
            np.savez(
                fh,
                video_ids=np.array([v.video_id for v in videos], dtype=str),
                offsets=offsets,
                lengths=lengths,
                start_times=np.array([v.start_time for v in videos], dtype=np.float64),
                frames=frames,
                **({schema.SEQUENCE_KEPT: np.concatenate([v.kept_flags for v in videos])}
                   if any(v.removes for v in videos) else {}),
            )


# --- feature CSVs ------------------------------------------------------------
