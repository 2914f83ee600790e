"""Typed parameters from params.yaml, validated before any work starts.

Every stage calls :func:`load_params` first, so a typo or an impossible value fails
in a second with one message naming the key and what it may be, instead of an hour
into training.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from trackfusion.schema import AUDIO_INPUTS, NUM_ASSET_CLASSES, NUM_TRACKS, VISUAL_SCALARS, named_columns

FUSION_TYPES = ("concat", "add", "gated", "attention")
CONTENT_CONTROLS = ("none", "shuffle")
EDIT_RATES = (24.0, 25.0, 30.0, 48.0, 50.0, 60.0)  # frame rates of exported timelines (SMPTE timecode rates)
CUT_CONTEXTS = ("content", "all")  # what the multimodal cut head reads (trackfusion.learn.model)
DEVICES = ("auto", "cpu", "cuda")
LR_SCHEDULES = ("constant", "cosine")
DECODING_SPLITS = ("train+val", "val")  # where the cut decoding (firing threshold, spacing) is chosen
SYNTHETIC_EDITORS = ("highlight", "events")  # the synthetic corpus's editor (trackfusion.data.synthetic)


class ParamsError(ValueError):
    """A params.yaml key is unknown, mistyped or out of range."""


@dataclass(frozen=True)
class DataParams:
    raw_dir: str = "data/synthetic"
    videos_dir: str = "recordings"  # recordings and their edits for the extract and ingest stages
    fps: int = 10
    split_seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15


@dataclass(frozen=True)
class SyntheticParams:
    seed: int = 0
    num_videos: int = 64
    min_duration_s: float = 90.0
    max_duration_s: float = 300.0
    editor: str = "highlight"  # highlight: keeps 25-60 % of each recording, then lays it out | events: keeps all


@dataclass(frozen=True)
class AlignParams:
    tolerance_s: float = 0.05
    max_interp_gap_s: float = 1.0
    warn_gap_s: float = 5.0
    interp_warn_fraction: float = 0.5


@dataclass(frozen=True)
class ModelParams:
    d_model: int = 64
    nhead: int = 4
    num_encoder_layers: int = 2
    dim_feedforward: int = 128
    dropout: float = 0.1
    seq_len: int = 128
    max_asset_classes: int = 10
    cut_context: str = "content"  # multimodal cut head reads: content (own encoder) | all (shared trunk)
    layout_veto: bool = True  # the layout may lower the content cut logit, never raise it (LayoutVeto)
    # the visual scalars the multimodal model reads (and CLIP); those left out are zeroed in its input
    visual_inputs: tuple[str, ...] = ("scene_change", "visual_motion", "face_mouth_open", "face_eyebrow_raise")
    toggle_tracks: tuple[int, ...] = (1,)  # tracks the audio switches on and off, by their own toggle head


@dataclass(frozen=True)
class TrainParams:
    epochs: int = 15
    batch_size: int = 16
    stride: int = 32
    track_noise: float = 0.0  # fraction of training windows whose track input holds a wrong layout over a stretch
    lr: float = 1e-3
    lr_schedule: str = "constant"  # constant | cosine: lr decays over train.epochs to lr_final_fraction * lr
    lr_final_fraction: float = 0.05
    decoding_on: str = "train+val"  # train+val | val: videos the cut firing threshold and spacing are chosen on
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    device: str = "auto"
    compile: bool = False
    nproc: int = 1
    num_workers: int = 0


@dataclass(frozen=True)
class LossParams:
    active: float = 1.0
    asset: float = 1.0
    scale: float = 0.5
    position: float = 0.5
    crop: float = 0.25
    change_weight: float = 20.0  # weight of track-frames whose state changes (cuts) in the active/asset terms
    cut: float = 1.0  # weight of the per-frame cut term (BCE of the cut logit against "the layout changes here")
    cut_pos_weight: float = 5.0  # weight of cut frames (~3 %) against the others in the cut term
    state: float = 1.0  # weight of the content-only state heads' term (each track's active flag and asset)
    which: float = 1.0  # weight of the which head's term (which tracks change, on the true cuts)
    which_window: int = 5  # frames from a cut whose changes its which target names (1: the cut frame's own):
    # a fire stands for every change the cut decoding's spacing would swallow after it


def _default_asset_patterns() -> dict[str, int]:
    # First match wins, so specific kinds (images, titles, face cams) come before the
    # broad "recording" names; the main recording itself is usually found by its
    # video id (ingest passes it), these patterns are for everything else.
    return {
        "*.png": 3, "*.jpg": 3, "*.jpeg": 3, "*.gif": 3, "*.webp": 3, "*.bmp": 3, "*image*": 3,
        "*title*": 2, "*text*": 2, "*caption*": 2, "*subtitle*": 2, "*telop*": 2, "*graphic*": 2,
        "*face*": 1, "*webcam*": 1, "*camera*": 1,
        "*main*": 0, "*bandicam*": 0, "*gameplay*": 0, "*recording*": 0, "*capture*": 0,
    }


@dataclass(frozen=True)
class TimelineParams:
    """How an editor's timeline file (OTIO, FCP 7 XML, CMX 3600 EDL) maps to track frames."""

    #: case-insensitive glob on media file name / media name / clip name -> asset class
    asset_patterns: dict[str, int] = field(default_factory=_default_asset_patterns)
    main_asset: int = 0  # class of the source recording (found by video id or by pattern)
    unmatched_asset: int = 4  # class of media no pattern matches (counted)
    edl_rate: float = 30.0  # frame rate of EDL timecodes (an EDL does not say)
    #: case-insensitive globs of media / clip names that are not footage (editors' built-in
    #: generators): such clips are skipped and counted, never an active track
    skip_patterns: tuple[str, ...] = ("transparent video", "bars and tone*", "*color matte*", "*colour matte*",
                                      "black video", "slug", "*adjustment layer*")


@dataclass(frozen=True)
class PredictParams:
    """The roll-out of the `predict` stage."""

    context: int = 32  # frames of history the model sees per roll-out step; cost per frame grows with it
    threshold: float = 0.5  # a track is active where sigmoid(active logit) > threshold
    param_tolerance: float = 0.5  # exported clips absorb parameter jitter below this (normalised units)
    edit_rate: float = 30.0  # frame rate of the exported timelines: an editing rate, a whole multiple of data.fps
    state_confidence: float = 0.95  # a track shows what the content-only state head says where it is this sure
    # (chosen on val); 1: the track heads alone, from the previous frame
    recall_placement: bool = True  # a track that comes back on comes back where it last showed in the edit
    toggle_threshold: float = 0.5  # a toggle track switches where its toggle head's probability reaches this


@dataclass(frozen=True)
class ExtractParams:
    """`trackfusion extract`: the feature tables made from a recording."""

    audio_window_s: float = 0.1  # one audio row per window: RMS and voice activity over it
    visual_every: int = 5  # one visual row every this many video frames (every 5th of 60 fps: 12 Hz)
    frame_width: int = 320  # frames are scaled to this width before the visual measures (speed)
    face_every_s: float = 0.5  # faces are detected this often and held between (the slowest measure)
    vad_threshold: float = 0.5  # silero-vad speech probability above which a window is speech
    clip: bool = True  # the CLIP columns (false: left empty, counted; `--no-clip` on the command line)
    clip_model: str = "openai/clip-vit-base-patch32"  # CLIP vision weights: a Hugging Face id in the cache, or a folder
    clip_every_s: float = 1.0  # CLIP is computed about once a second and held between
    transcriber: str = ""  # text_word / text_is_active: a faster-whisper model (folder or cache name), or
    # package.module:factory for your own; "" leaves them empty (counted)
    transcribe_chunk_s: float = 30.0  # the transcriber hears the audio in chunks this long, as it streams
    workers: int = 2  # recordings extracted at once, one process each


@dataclass(frozen=True)
class SelectParams:
    """What the edit keeps: the selection model (trackfusion.learn.selection) and its decoding to a length."""

    target_ratio: float = 0.4  # the edit keeps this share of the recording (when target_s is 0)
    target_s: float = 0.0  # > 0: the edit lasts this long (seconds), whatever the recording's length
    margin_before_s: float = 0.0  # lead-in before each kept stretch (the model's scores already hold the editor's)
    margin_after_s: float = 0.0  # tail after each kept stretch
    min_clip_s: float = 2.0  # kept stretches shorter than this are dropped
    min_gap_s: float = 1.0  # dropped stretches shorter than this between kept ones are kept
    pool_frames: int = 5  # the model's coarse rate: frames pooled per step (2 Hz at 10 fps)
    hidden: int = 16  # width of its encoders
    epochs: int = 30  # passes over the train videos (each video one sequence)
    lr: float = 0.003
    ensemble: int = 5  # models trained from as many seeds, their keep logits averaged (one seed: test kept F1
    # 0.831 +- 0.008 over 15 seeds; five: 0.837 +- 0.002)
    ema: float = 0.98  # each member's checkpoints are the exponential moving average of its weights over the
    # optimiser's steps, decay this (0: the weights as they are); the best epoch on val is then chosen among
    # averaged weights, not one step's
    # the scalars the model reads (CLIP is read too): per-scene constants (saliency, face geometry) let the
    # train videos be memorised, scene by scene (val kept F1 0.832 with every scalar, 0.852 with these)
    audio_inputs: tuple[str, ...] = ("audio_energy_rms", "audio_is_speaking", "silence_duration_ms")
    visual_inputs: tuple[str, ...] = ("scene_change", "visual_motion")


@dataclass(frozen=True)
class EditParams:
    """`trackfusion edit`: a trained model applied to a new recording."""

    opening_scale: float = 100.0  # the opening layout: the recording alone on track 1, centred, at this scale (%)


@dataclass(frozen=True)
class Params:
    seed: int = 0
    fusion_type: str = "gated"
    use_audio: bool = True
    use_visual: bool = True
    content_control: str = "none"
    data: DataParams = field(default_factory=DataParams)
    synthetic: SyntheticParams = field(default_factory=SyntheticParams)
    align: AlignParams = field(default_factory=AlignParams)
    model: ModelParams = field(default_factory=ModelParams)
    train: TrainParams = field(default_factory=TrainParams)
    loss: LossParams = field(default_factory=LossParams)
    timeline: TimelineParams = field(default_factory=TimelineParams)
    predict: PredictParams = field(default_factory=PredictParams)
    select: SelectParams = field(default_factory=SelectParams)
    edit: EditParams = field(default_factory=EditParams)
    extract: ExtractParams = field(default_factory=ExtractParams)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(key: str, value: Any, typ: Any) -> Any:
    if get_origin(typ) is Union:  # Optional[...] is not used today; keep the door open
        typ = next(t for t in get_args(typ) if t is not type(None))
    if get_origin(typ) is dict:
        key_type, value_type = get_args(typ)
        if not isinstance(value, dict):
            raise ParamsError(f"params key '{key}' must be a mapping, got {value!r} ({type(value).__name__})")
        return {
            _coerce(f"{key} (a key)", k, key_type): _coerce(f"{key}[{k!r}]", v, value_type)
            for k, v in value.items()
        }
    if get_origin(typ) is tuple:  # tuple[str, ...]: a YAML list
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"params key '{key}' must be a list, got {value!r} ({type(value).__name__})")
        return tuple(_coerce(f"{key}[{i}]", v, get_args(typ)[0]) for i, v in enumerate(value))
    if typ is bool:
        if isinstance(value, bool):
            return value
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif typ is str:
        if isinstance(value, str):
            return value
    raise ParamsError(f"params key '{key}' must be {typ.__name__}, got {value!r} ({type(value).__name__})")


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"params key '{prefix.rstrip('.') or '<root>'}' must be a mapping, got {raw!r}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ParamsError(
            f"unknown params key '{prefix}{unknown[0]}'; allowed keys here: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for name in names & set(raw):
        typ = hints[name]
        if dataclasses.is_dataclass(typ):
            kwargs[name] = _build(typ, raw[name], f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(f"{prefix}{name}", raw[name], typ)
    return cls(**kwargs)


def _check(p: Params) -> None:
    def choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
        if value not in allowed:
            raise ParamsError(f"params key '{key}' is {value!r}; allowed values: {', '.join(allowed)}")

    def positive(key: str, value: float) -> None:
        if not value > 0:
            raise ParamsError(f"params key '{key}' must be > 0, got {value!r}")

    choice("fusion_type", p.fusion_type, FUSION_TYPES)
    choice("content_control", p.content_control, CONTENT_CONTROLS)
    choice("train.device", p.train.device, DEVICES)
    choice("train.lr_schedule", p.train.lr_schedule, LR_SCHEDULES)
    choice("train.decoding_on", p.train.decoding_on, DECODING_SPLITS)
    choice("model.cut_context", p.model.cut_context, CUT_CONTEXTS)
    choice("synthetic.editor", p.synthetic.editor, SYNTHETIC_EDITORS)
    for section in ("model", "train", "synthetic", "predict", "extract"):
        obj = getattr(p, section)
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name in ("dropout", "weight_decay", "seed", "num_workers", "param_tolerance", "track_noise"):
                if isinstance(value, (int, float)) and value < 0:
                    raise ParamsError(f"params key '{section}.{f.name}' must be >= 0, got {value!r}")
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                positive(f"{section}.{f.name}", value)
    positive("data.fps", p.data.fps)
    if not 0.5 <= p.predict.state_confidence <= 1.0:
        raise ParamsError(f"params key 'predict.state_confidence' must be within 0.5..1, got {p.predict.state_confidence!r}")
    if not 0.0 < p.predict.toggle_threshold < 1.0:
        raise ParamsError(f"params key 'predict.toggle_threshold' must be within 0..1 (exclusive), "
                          f"got {p.predict.toggle_threshold!r}")
    toggles = list(p.model.toggle_tracks)
    if any(not 0 <= t < NUM_TRACKS for t in toggles) or len(set(toggles)) != len(toggles):
        raise ParamsError(f"params key 'model.toggle_tracks' must list distinct track indices within "
                          f"0..{NUM_TRACKS - 1} ([1]: the face cam; []: none), got {toggles!r}")
    for key in ("tolerance_s", "max_interp_gap_s", "warn_gap_s", "interp_warn_fraction"):
        positive(f"align.{key}", getattr(p.align, key))
    asset_keys = [("timeline.main_asset", p.timeline.main_asset), ("timeline.unmatched_asset", p.timeline.unmatched_asset)]
    asset_keys += [(f"timeline.asset_patterns[{k!r}]", v) for k, v in p.timeline.asset_patterns.items()]
    for key, value in asset_keys:
        if not 0 <= value < NUM_ASSET_CLASSES:
            raise ParamsError(f"params key '{key}' is {value}; asset classes are 0..{NUM_ASSET_CLASSES - 1}")
    positive("timeline.edl_rate", p.timeline.edl_rate)
    if p.model.d_model % p.model.nhead:
        raise ParamsError(
            f"params key 'model.d_model' ({p.model.d_model}) must be divisible by 'model.nhead' ({p.model.nhead})"
        )
    if not 0 <= p.train.track_noise <= 1:
        raise ParamsError(f"params key 'train.track_noise' must be in [0, 1], got {p.train.track_noise}")
    for section in ("data", "synthetic", "align", "model", "train", "loss", "timeline", "predict", "select", "edit",
                    "extract"):
        for f in dataclasses.fields(getattr(p, section)):
            value = getattr(getattr(p, section), f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ParamsError(f"params key '{section}.{f.name}' must be a finite number, got {value!r}")
    for f in dataclasses.fields(p.loss):  # 0 switches a term off
        if getattr(p.loss, f.name) < 0:
            raise ParamsError(f"params key 'loss.{f.name}' must be >= 0, got {getattr(p.loss, f.name)!r}")
    if p.loss.which_window < 1:
        raise ParamsError(f"params key 'loss.which_window' must be >= 1 (frames), got {p.loss.which_window!r}")
    if p.train.stride > p.model.seq_len:
        raise ParamsError(
            f"params key 'train.stride' ({p.train.stride}) must be <= 'model.seq_len' ({p.model.seq_len}): "
            "a larger stride skips frames of every training video"
        )
    if not 0 <= p.model.dropout < 1:
        raise ParamsError(f"params key 'model.dropout' must be in [0, 1), got {p.model.dropout}")
    positive("edit.opening_scale", p.edit.opening_scale)
    for key in ("pool_frames", "hidden", "epochs", "lr", "min_clip_s", "ensemble"):
        positive(f"select.{key}", getattr(p.select, key))
    for key in ("target_s", "margin_before_s", "margin_after_s", "min_gap_s"):
        if getattr(p.select, key) < 0:
            raise ParamsError(f"params key 'select.{key}' must be >= 0, got {getattr(p.select, key)!r}")
    if not 0 <= p.select.ema < 1:
        raise ParamsError(f"params key 'select.ema' must be in [0, 1) (0: no averaging), got {p.select.ema!r}")
    if not 0 < p.select.target_ratio <= 1:
        raise ParamsError(f"params key 'select.target_ratio' must be in (0, 1], got {p.select.target_ratio}")
    for key, names, columns in (("select.audio_inputs", p.select.audio_inputs, AUDIO_INPUTS),
                                ("select.visual_inputs", p.select.visual_inputs, VISUAL_SCALARS),
                                ("model.visual_inputs", p.model.visual_inputs, VISUAL_SCALARS)):
        try:
            named_columns(f"params key '{key}'", names, columns)
        except ValueError as exc:
            raise ParamsError(str(exc)) from None
    for key in ("audio_window_s", "visual_every", "frame_width", "face_every_s", "clip_every_s", "workers"):
        positive(f"extract.{key}", getattr(p.extract, key))
    if not 0 < p.extract.vad_threshold < 1:
        raise ParamsError(f"params key 'extract.vad_threshold' must be in (0, 1), got {p.extract.vad_threshold}")
    if p.predict.edit_rate not in EDIT_RATES or not (p.predict.edit_rate / p.data.fps).is_integer():
        raise ParamsError(
            f"params key 'predict.edit_rate' is {p.predict.edit_rate:g}; it must be an editing rate "
            f"({', '.join(f'{r:g}' for r in EDIT_RATES)}) and a whole multiple of data.fps ({p.data.fps:g})"
        )
    if p.synthetic.min_duration_s > p.synthetic.max_duration_s:
        raise ParamsError("params key 'synthetic.min_duration_s' must be <= 'synthetic.max_duration_s'")
    fractions = (p.data.val_fraction, p.data.test_fraction)
    if any(not 0 <= f < 1 for f in fractions) or sum(fractions) >= 1:
        raise ParamsError(
            "params keys 'data.val_fraction' and 'data.test_fraction' must be in [0, 1) and sum to < 1, "
            f"got {fractions}"
        )


def params_from_dict(raw: dict[str, Any] | None) -> Params:
    """Build and validate Params; raises ParamsError naming the first bad key."""
    params = _build(Params, raw or {}, "")
    _check(params)
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    try:
        return params_from_dict(raw)
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None


DEFAULT_PARAMS_FILE = Path("params.yaml")


def command_params(path: str | Path | None = None) -> Params:
    """The params of a `trackfusion` command: `path` when given (it must exist), else ``params.yaml``
    here, else the defaults (saying so in one line): a command runs outside a checkout too."""
    if path is not None:
        return load_params(path)
    if DEFAULT_PARAMS_FILE.is_file():
        return load_params(DEFAULT_PARAMS_FILE)
    logging.getLogger(__name__).info("no params.yaml in %s: using the defaults (pass --params to choose a file)",
                                     Path.cwd())
    return Params()


def stage_params(path: str | Path = "params.yaml") -> Params:
    """`load_params` for a pipeline stage: an invalid file ends the process with one line, no traceback."""
    try:
        return load_params(path)
    except ParamsError as exc:
        raise SystemExit(f"error: {exc}") from None
