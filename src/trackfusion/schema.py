"""The feature contract: every column, its kind, the widths and the track layout.

This is the only module that lists columns. Everything else derives from it, so a
new column is added here once and flows to io, alignment, normalisation and models.

Raw layout (SPEC section 3)::

    <raw_dir>/sequences.npz
        video_ids   (V,)  str      recording file stems (may contain spaces)
        offsets     (V,)  int64    first row of each video in ``frames``
        lengths     (V,)  int64    number of frames of each video
        start_times (V,)  float64  time (s) of each video's first frame in its recording
        frames      (N, 180) float32  all videos' track frames, video after video
        kept        (N,)  uint8    optional: 1 where that frame of the recording plays in the edit
                                   (its picture or its sound), 0 where the editor dropped it; a
                                   dropped frame's 180 values are all zero. Absent: every frame is kept.
    <raw_dir>/features/<video_id>_features.csv          audio table
    <raw_dir>/features/<video_id>_visual_features.csv   visual table

``sequences.npz`` is written uncompressed (``np.savez``) so that one video's rows can
be read by seeking inside the zip member without loading the whole corpus.
Frame ``i`` of a video is at time ``start_time + i / fps``. A video's frames cover its whole
recording as far as its feature tables or its media reach, kept or not: an edit that removes
(a highlight reel of jump cuts) says what it dropped with ``kept``, not by leaving frames out.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Iterable


class Kind(str, Enum):
    """How a column is aligned and normalised."""

    CONTINUOUS = "continuous"  # linear interpolation, z-score
    BINARY = "binary"  # forward fill, left as 0/1
    COUNT = "count"  # nearest sample, z-score
    EVENT = "event"  # 1 on the frame after an event sample, left as 0/1
    EMBEDDING = "embedding"  # linear interpolation + L2 renorm (CLIP)
    EXCLUDED = "excluded"  # read or carried, never a model input


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind


TIME = "time"
FPS = 10  # default track frame rate; params `data.fps` overrides

# --- audio -------------------------------------------------------------------
#: columns of ``<video_id>_features.csv`` in file order
AUDIO_FILE_COLUMNS: tuple[Column, ...] = (
    Column(TIME, Kind.EXCLUDED),
    Column("audio_energy_rms", Kind.CONTINUOUS),
    Column("audio_is_speaking", Kind.BINARY),
    Column("silence_duration_ms", Kind.CONTINUOUS),
    Column("speaker_id", Kind.EXCLUDED),  # categorical; source of speaker_turn
    Column("text_is_active", Kind.BINARY),
    Column("text_word", Kind.EXCLUDED),  # free text, often Japanese, quoted
)
SPEAKER_ID = "speaker_id"
TEXT_WORD = "text_word"
#: the five model inputs, in model order; speaker_turn is derived from speaker_id
AUDIO_INPUTS: tuple[Column, ...] = (
    Column("audio_energy_rms", Kind.CONTINUOUS),
    Column("audio_is_speaking", Kind.BINARY),
    Column("silence_duration_ms", Kind.CONTINUOUS),
    Column("text_is_active", Kind.BINARY),
    Column("speaker_turn", Kind.EVENT),
)

# --- visual ------------------------------------------------------------------
CLIP_DIM = 512
FACE_COUNT = "face_count"
FACE_FIELDS: tuple[str, ...] = (
    "face_center_x",
    "face_center_y",
    "face_size",
    "face_mouth_open",
    "face_eyebrow_raise",
)
VISUAL_SCALARS: tuple[Column, ...] = (
    Column("scene_change", Kind.CONTINUOUS),
    Column("visual_motion", Kind.CONTINUOUS),
    Column("saliency_x", Kind.CONTINUOUS),
    Column("saliency_y", Kind.CONTINUOUS),
    Column(FACE_COUNT, Kind.COUNT),
    *(Column(name, Kind.CONTINUOUS) for name in FACE_FIELDS),
)
CLIP_COLUMNS: tuple[Column, ...] = tuple(Column(f"clip_{i}", Kind.EMBEDDING) for i in range(CLIP_DIM))
#: the 522 model inputs in model order: ten scalars then clip_0..clip_511
VISUAL_INPUTS: tuple[Column, ...] = VISUAL_SCALARS + CLIP_COLUMNS
VISUAL_FILE_COLUMNS: tuple[Column, ...] = (Column(TIME, Kind.EXCLUDED),) + VISUAL_INPUTS

# --- track -------------------------------------------------------------------
NUM_TRACKS = 20
TRACK_PARAMS: tuple[str, ...] = ("active", "asset_id", "scale", "x", "y", "crop_l", "crop_r", "crop_t", "crop_b")
NUM_TRACK_PARAMS = len(TRACK_PARAMS)  # 9
NUM_ASSET_CLASSES = 10
#: track x, y are the clip centre in pixels of a FRAME_WIDTH x FRAME_HEIGHT output frame,
#: (0, 0) top left; scale is percent (100 = unscaled); crops are percent of each side
FRAME_WIDTH, FRAME_HEIGHT = 1920, 1080
#: asset classes with a fixed meaning; ids 4..9 are the editor's own naming
ASSET_CLASSES: tuple[str, ...] = ("main", "face_cam", "text", "image", "other")
#: the synthetic editor's layout, which the models' layout noise assumes of every corpus: each track it
#: uses and the assets that track can show (main footage or the editor's other sources, face cam, text, image, stickers)
TRACK_ASSETS: dict[int, tuple[int, ...]] = {0: (0, 4, 5, 6), 1: (1,), 2: (2,), 3: (3,), 4: (5, 6, 7, 8)}
#: track parameters that are continuous (z-scored on active frames)
TRACK_CONTINUOUS: tuple[str, ...] = TRACK_PARAMS[2:]
TRACK_INPUTS: tuple[Column, ...] = tuple(
    Column(f"track{t}_{p}", Kind.BINARY if p == "active" else Kind.COUNT if p == "asset_id" else Kind.CONTINUOUS)
    for t in range(NUM_TRACKS)
    for p in TRACK_PARAMS
)

AUDIO_WIDTH = len(AUDIO_INPUTS)  # 5
VISUAL_SCALAR_WIDTH = len(VISUAL_SCALARS)  # 10
VISUAL_WIDTH = len(VISUAL_INPUTS)  # 522
TRACK_WIDTH = NUM_TRACKS * NUM_TRACK_PARAMS  # 180
#: the crop parameters, in track layout order
CROPS: tuple[str, ...] = TRACK_PARAMS[5:]
#: the model's per-track outputs and the track parameters each one predicts (asset_id as classes)
HEAD_PARAMS: dict[str, tuple[str, ...]] = {
    "active": ("active",), "asset": ("asset_id",), "scale": ("scale",), "position": ("x", "y"), "crop": CROPS,
}
MODALITIES: tuple[str, ...] = ("audio", "visual", "track")  # order of the (T, 3) modality mask
FEATURE_MODALITIES: tuple[str, ...] = MODALITIES[:2]  # the content: what feature tables hold
WIDTHS: dict[str, int] = {"audio": AUDIO_WIDTH, "visual": VISUAL_WIDTH, "track": TRACK_WIDTH}

SEQUENCE_KEYS: tuple[str, ...] = ("video_ids", "offsets", "lengths", "start_times", "frames")
SEQUENCE_KEPT = "kept"  # optional member of sequences.npz: (N,) uint8, absent = every frame kept
SEQUENCES_FILE = "sequences.npz"
FEATURES_DIR = "features"
#: beside sequences.npz in a synthetic corpus only: its editor's noiseless cut events, the references' ceiling
CEILING_FILE = "editor_ceiling.json"
#: beside it: the same editor's noiseless timeline over the kept frames (one (K, 180) array per video id)
CEILING_LAYOUT_FILE = "editor_ceiling_layout.npz"


def param_index(name: str) -> int:
    """Position of a track parameter within one track's 9 values."""
    return TRACK_PARAMS.index(name)


def track_columns(name: str, width: int = TRACK_WIDTH) -> slice:
    """Slice of the track columns holding parameter `name` for every track: of the 180
    columns, or of any ``width = N * 9`` (a model with N track slots)."""
    return slice(param_index(name), width, NUM_TRACK_PARAMS)


def check_video_id(video_id: str) -> str:
    """`video_id` if it is a plain file-name stem, else ValueError naming it.

    Every stage names files after the video id (feature tables, timelines, predicted
    edits), so an id that is a path (absolute, with a separator, ``.`` or ``..``) or
    holds control characters would read or write outside its folder.
    """
    bad = (
        not isinstance(video_id, str)
        or video_id in ("", ".", "..")
        or any(c in video_id for c in "/\\")
        or any(ord(c) < 32 or ord(c) == 127 for c in video_id)
        or len(video_id.encode("utf-8", "surrogatepass")) > 200
    )
    if bad:
        shown = repr(video_id)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ValueError(
            f"video id {shown} is not a plain file name (no path separators, '.', '..', control characters, "
            "at most 200 bytes): rename the source files"
        )
    return video_id


def audio_file_name(video_id: str) -> str:
    return f"{check_video_id(video_id)}_features.csv"


def visual_file_name(video_id: str) -> str:
    return f"{check_video_id(video_id)}_visual_features.csv"


def input_names(columns: tuple[Column, ...]) -> list[str]:
    return [c.name for c in columns]


def named_columns(key: str, names: Iterable[str], columns: tuple[Column, ...]) -> tuple[str, ...]:
    """`names` as a tuple when each names one of `columns` (a model's chosen inputs), else ValueError naming
    `key`, the unknown names and the allowed ones."""
    names, allowed = tuple(names), input_names(columns)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"{key}: unknown column(s) {unknown}; allowed: {', '.join(allowed)}")
    return names


def indices_of_kind(columns: tuple[Column, ...], kind: Kind) -> list[int]:
    return [i for i, c in enumerate(columns) if c.kind == kind]
