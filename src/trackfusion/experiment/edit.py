"""`trackfusion edit`: a trained model applied to a recording it has never seen, written as a timeline.

The recording's feature tables (SPEC section 3: ``<stem>_features.csv`` and
``<stem>_visual_features.csv``) are aligned onto the track's frame grid as the `align`
stage does, normalised with the training corpus' saved statistics
(``normalization.json``), and the model is rolled out from an opening layout (the
recording alone on track 1, full frame at ``edit.opening_scale`` percent) with the roll-out
of the `predict` stage (`trackfusion.learn.rollout.rollout`: its own decoded output is
the next frame's input; the cut decoding chosen on validation travels in the model file).
First the selection model (``models/selection.pt``, the select stage's) scores every frame
of the whole recording and the scores are decoded to the target length (``--target 2min``,
``--target 25%``, else ``select.target_s`` / ``select.target_ratio``) with the decoding of
``select``; the layout model then rolls out over the kept frames in edit order. The edit is
exported by the project's timeline export at ``predict.edit_rate``: ``.otio``, FCP 7 /
Premiere ``.xml`` or a one-track ``.edl``, the recording named by its stem, the dropped
stretches as jump cuts.

    trackfusion edit "my recording" --features my_features --out edit.xml
    trackfusion edit recording.mp4 --target 2min --out edit.xml   # tables extracted first (CLIP as extract.clip says)
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trackfusion import cuts, schema, selection
from trackfusion.timemap import TimeMap
from trackfusion.data.alignment import FeatureAligner
from trackfusion.data.extract import VIDEO_SUFFIXES, extract_recording
from trackfusion.data.normalization import NORMALIZATION_FILE, TrackPreprocessor, load_preprocessors
from trackfusion.io import features
from trackfusion.io.render import recording_rate, render_edit
from trackfusion.io.timeline import export_timeline
from trackfusion.io.timeline.formats import format_for
from trackfusion.learn.checkpoint import load_checkpoint
from trackfusion.learn.rollout import decoding_of, rollout, rollout_context
from trackfusion.learn.selection_model import (
    Recording,
    keep_scores,
    load_selection,
    params_decoding,
)
from trackfusion.params import Params, command_params

log = logging.getLogger(__name__)


class EditError(ValueError):
    """The recording's tables, the model or the corpus statistics cannot be used; the message says which."""


_DURATION = re.compile(r"^\s*(?:(?P<h>\d+(?:\.\d+)?)h)?\s*(?:(?P<m>\d+(?:\.\d+)?)\s*(?:min|m))?\s*"
                       r"(?:(?P<s>\d+(?:\.\d+)?)\s*s?)?\s*$")


def parse_target(text: str) -> tuple[float | None, float | None]:
    """``--target``: ``(seconds, None)`` for a length (``2min``, ``90s``, ``1m30s``, ``1:30``, ``120``) or
    ``(None, ratio)`` for a share (``25%``). ValueError says what is accepted."""
    t = text.strip().lower()
    try:
        if t.endswith("%"):
            ratio = float(t[:-1]) / 100
            if 0 < ratio <= 1:
                return None, ratio
        elif ":" in t:
            parts = [float(x) for x in t.split(":")]
            if 2 <= len(parts) <= 3:
                seconds = sum(v * 60**i for i, v in enumerate(reversed(parts)))
                if seconds > 0:
                    return seconds, None
        else:
            m = _DURATION.match(t)
            if m and any(m.groupdict().values()):
                seconds = sum(float(m[k] or 0) * f for k, f in (("h", 3600), ("m", 60), ("s", 1)))
                if seconds > 0:
                    return seconds, None
    except ValueError:
        pass
    raise ValueError(f"--target {text!r}: give a length (2min, 90s, 1m30s, 1:30) or a share of the recording "
                     "(25%), more than 0")


def target_frames(n_frames: int, fps: float, seconds: float | None, ratio: float | None) -> int:
    """Frames the edit keeps: `seconds` of it when given, else `ratio` of the recording (at most all of it)."""
    frames = int(round(seconds * fps)) if seconds else int(round((ratio or 1.0) * n_frames))
    return min(max(frames, 1), n_frames)


def select_frames(batch: dict[str, torch.Tensor], selection_path: str | Path, fps: float, params: Params,
                  target_s: float | None, target_ratio: float | None) -> np.ndarray:
    """(T,) bool: the frames the selection model keeps, decoded to the target."""
    model, payload = load_selection(selection_path)
    mask = batch["modality_mask"][0, :, :2].numpy()
    recording = Recording("recording", "test", batch["audio"][0].numpy(), batch["visual"][0].numpy(), mask,
                          np.zeros(len(mask), bool))  # kept: not an input, never read
    stored = payload.get("extra", {}).get("decoding")  # the select stage's; else the params'
    decoding = selection.SelectionDecoding.from_dict(stored) if stored else params_decoding(params)
    if target_s is None and target_ratio is None:
        target_s, target_ratio = params.select.target_s or None, params.select.target_ratio
    goal = target_frames(len(mask), fps, target_s, target_ratio)
    return selection.decode_to_length(keep_scores(model, recording), fps, decoding, goal)


SYNTHETIC_RAW_DIR = "data/synthetic"  # the default corpus (data.raw_dir's default)


def warn_if_synthetic(payload: dict[str, Any], model_path: str | Path, features_dir: Path) -> bool:
    """One warning line when the model learned the synthetic corpus's editor and the recording is not one
    of that corpus: its edit then shows that editor's habits, not yours. Returns whether it warned."""
    try:
        trained = json.loads(payload.get("extra", {}).get("params", "{}")).get("data", {}).get("raw_dir")
    except (TypeError, ValueError):
        return False
    if trained != SYNTHETIC_RAW_DIR or Path(features_dir).resolve().is_relative_to(Path(trained).resolve()):
        return False
    log.warning("%s was trained on the synthetic corpus (%s), not on edits of yours: its edit of this recording "
                "shows the synthetic editor's habits; see the README, 'Using your own data', to train on your own "
                "recordings", model_path, trained)
    return True


def opening_layout(scale: float = 100.0) -> np.ndarray:
    """(180,) the first frame of every generated edit: the recording alone on track 1, centred."""
    frame = np.zeros(schema.TRACK_WIDTH, np.float32)
    frame[: schema.NUM_TRACK_PARAMS] = [1.0, 0.0, scale, schema.FRAME_WIDTH / 2, schema.FRAME_HEIGHT / 2, 0, 0, 0, 0]
    return frame


def recording_batch(stem: str, features_dir: Path, params: Params,
                    corpus_dir: Path) -> tuple[dict[str, torch.Tensor], float, TrackPreprocessor]:  # fmt: skip
    """The recording as one whole-video batch in the training corpus' units, its start time (s)
    and the corpus' track preprocessor (which turns the edit back into the file's units).

    Frames run at ``data.fps`` over the span of its feature tables; where a table has no
    sample near a frame the modality is unavailable there (SPEC section 5), as in training.
    """
    files = features.FeatureFiles(*(p if p.is_file() else None for p in (
        features_dir / schema.audio_file_name(stem), features_dir / schema.visual_file_name(stem))))
    if files.audio is None and files.visual is None:
        raise EditError(
            f"{features_dir}: no feature tables for '{stem}' (expected {schema.audio_file_name(stem)} and/or "
            f"{schema.visual_file_name(stem)}); make them first (SPEC section 3)"
        )
    tables = {m: features.read_features(files.get(m), m) if files.get(m) else None for m in schema.FEATURE_MODALITIES}
    spans = [(t.times[0], t.times[-1]) for t in tables.values() if t is not None and len(t.times)]
    if not spans:
        raise EditError(f"{features_dir}: the feature tables of '{stem}' hold no rows")
    # frames on the recording's own 1/fps ticks, as sequences.npz frames are
    grid, n_frames = TimeMap.spanning(float(params.data.fps), min(a for a, _ in spans), max(b for _, b in spans))
    times = grid.frame_times(n_frames)  # (T,)
    aligned = FeatureAligner.from_params(params.align).align_features(times, tables["audio"], tables["visual"], stem)
    stats = corpus_dir / NORMALIZATION_FILE
    if not stats.is_file():
        raise EditError(f"{stats}: the training corpus' statistics are not there; pass --corpus (data/normalized)")
    audio_pre, visual_pre, track_pre = load_preprocessors(stats)
    mask = aligned.mask.copy()
    mask[:, 2] = True  # the track is the model's own output: always there
    audio = audio_pre.transform(aligned.audio, mask[:, 0])
    visual = np.zeros((len(times), schema.VISUAL_WIDTH), np.float32)
    visual[:, : schema.VISUAL_SCALAR_WIDTH] = visual_pre.transform(aligned.visual_scalars, mask[:, 1])
    # stored as float16 in a corpus: the model sees the same precision here
    visual[:, schema.VISUAL_SCALAR_WIDTH :] = visual_pre.transform_clip(aligned.clip, mask[:, 1]).astype(np.float16)
    audio[~mask[:, 0]] = 0.0
    visual[~mask[:, 1]] = 0.0
    targets = np.zeros((len(times), schema.TRACK_WIDTH), np.float32)
    targets[0] = track_pre.transform(opening_layout(params.edit.opening_scale)[None])[0]  # the only frame given
    batch = {
        "audio": torch.from_numpy(audio[None]),
        "visual": torch.from_numpy(visual[None]),
        "targets": torch.from_numpy(targets[None]),
        "padding_mask": torch.ones(1, len(times), dtype=torch.bool),
        "modality_mask": torch.from_numpy(mask[None]),
    }
    return batch, float(grid.start_time), track_pre


def edit_recording(stem: str, features_dir: str | Path, model_path: str | Path, out: str | Path, params: Params,
                   corpus_dir: str | Path = "data/normalized", recording_url: str | None = None,
                   selection_path: str | Path | None = "models/selection.pt", target_s: float | None = None,
                   target_ratio: float | None = None, rate: float | None = None, render_to: str | Path | None = None,
                   video: str | Path | None = None, media_dir: str | Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Generate the edit of one recording and write it to `out` (format by extension); returns the export report.

    With a `selection_path` the edit keeps what the selection model picks, to the target
    (module docstring); with None it keeps the whole recording. The file is at `rate` (default
    ``predict.edit_rate``). With `render_to` the edit is also rendered from the recording's `video`
    (``trackfusion render``, of the same edit written as .otio, whatever `out`'s format carries)."""
    schema.check_video_id(stem)
    features_dir, corpus_dir = Path(features_dir), Path(corpus_dir)
    batch, start, track_pre = recording_batch(stem, features_dir, params, corpus_dir)
    n, fps = batch["audio"].shape[1], float(params.data.fps)
    kept = (np.ones(n, bool) if selection_path is None
            else select_frames(batch, selection_path, fps, params, target_s, target_ratio))
    model, payload = load_checkpoint(model_path)
    model.eval()
    warn_if_synthetic(payload, model_path, features_dir)
    rows = torch.from_numpy(np.flatnonzero(kept))  # the layout runs over the edit: its kept frames in order
    edit_batch = {k: v[:, rows] for k, v in batch.items()}
    edit_batch["targets"][0, 0] = batch["targets"][0, 0]  # the opening layout on the edit's first frame
    _, frames = rollout(model, edit_batch, rollout_context(params), decoding_of(payload), params.predict.threshold,
                        param_tolerance=params.predict.param_tolerance,
                        state_confidence=params.predict.state_confidence,
                        recall_placement=params.predict.recall_placement,
                        toggle_threshold=params.predict.toggle_threshold)  # fmt: skip
    edit = np.zeros((n, schema.TRACK_WIDTH), np.float32)
    edit[kept] = track_pre.inverse_transform(frames[0].numpy())
    export = dict(fps=params.data.fps, name=f"{stem} (trackfusion edit)", start_time=start, media_names={0: stem},
                  recording_url=recording_url, kept=None if kept.all() else kept,
                  param_tolerance=params.predict.param_tolerance * track_pre.column_stats()[1])
    report = export_timeline(edit, out, rate=rate or params.predict.edit_rate, **export)
    report["cut_events"] = int(len(cuts.video_cut_events(edit[kept])))
    report["kept_frames"], report["kept_s"] = int(kept.sum()), round(float(kept.sum()) / fps, 3)
    report["jump_cuts"] = max(len(selection.segments(kept)) - 1, 0)
    log.info("%s: %.1f s of a %.1f s recording kept in %d stretches, edited by %s: %d cuts, %d clips on %d tracks",
             out, kept.sum() / fps, n / fps, report["jump_cuts"] + 1, model_path, report["cut_events"],
             report["clips"], report["tracks"])
    if render_to is not None:
        if video is None:
            raise EditError(f"{render_to}: rendering needs the recording's video file; give it as the recording")
        with tempfile.TemporaryDirectory(prefix="trackfusion-render-") as tmp:  # the same edit, every parameter kept
            source = Path(tmp) / f"{stem}.otio"
            export_timeline(edit, source, rate=params.predict.edit_rate, **export)
            report["render"] = render_edit(source, video, render_to, media_dir, stem, params.timeline)
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", help="a video file (its tables are extracted first, with CLIP as extract.clip "
                                          "says), or the stem of "
                                          "feature tables <stem>_features.csv / <stem>_visual_features.csv in --features")  # fmt: skip
    parser.add_argument("--features", type=Path, help="folder of the recording's feature tables (for a stem)")
    parser.add_argument("--out", required=True, type=Path, help="timeline to write: .otio, .xml (FCP 7 / Premiere), "
                                                                ".fcpxml (Final Cut Pro, DaVinci Resolve), .mlt "
                                                                "(Shotcut, Kdenlive) or .edl (one track)")  # fmt: skip
    parser.add_argument("--model", default=Path("models/multimodal.pt"), type=Path, help="a trained layout model file")
    parser.add_argument("--selection", default=Path("models/selection.pt"), type=Path,
                        help="the selection model file (what the edit keeps)")
    parser.add_argument("--target", help="how long the edit is: 2min, 90s, 1:30, or a share such as 25%% "
                                         "(default: select.target_s, else select.target_ratio)")
    parser.add_argument("--keep-all", action="store_true", help="keep the whole recording (no selection)")
    parser.add_argument("--corpus", default=Path("data/normalized"), type=Path,
                        help="the training corpus: its normalization.json puts the recording in the model's units")
    parser.add_argument("--params", default=None, type=Path, help="params file (data, align, predict, "
                                                                                 "edit, extract)")  # fmt: skip
    parser.add_argument("--recording-url", help="the recording's file, for the timeline's media reference")
    parser.add_argument("--render", type=Path, help="also render the edit to this video (.mp4), from the recording's "
                                                    "video file (`trackfusion render`)")
    parser.add_argument("--media", type=Path, help="with --render: folder of the edit's other media, by name")
    parser.add_argument("--no-clip", action="store_true", help="a video file's CLIP columns left empty (no CLIP "
                                                               "weights needed), as `extract --no-clip`")


def run(args: argparse.Namespace) -> int:
    recording = Path(args.recording)
    is_video = recording.suffix.lower() in VIDEO_SUFFIXES
    if not is_video and args.features is None:
        raise EditError(f"{args.recording}: give --features (the folder of its feature tables), or a video file")
    if args.render is not None and not is_video:  # before any work: a render plays the recording's own file
        raise EditError(f"{args.render}: --render needs the recording's video file as RECORDING, not a stem")
    # expected conditions (no tables, no model, not a model, a bad --target) end in one line in the console script
    target_s, target_ratio = parse_target(args.target) if args.target else (None, None)
    params = command_params(args.params)
    clip = params.extract.clip and not args.no_clip
    with tempfile.TemporaryDirectory(prefix="trackfusion-edit-") as tmp:
        features_dir, stem, url = args.features, args.recording, args.recording_url
        if is_video:  # the tables of the contract, made by extract into a folder that is removed after
            extract_recording(recording, tmp, params.extract, clip=clip)
            features_dir, stem = Path(tmp) / schema.FEATURES_DIR, recording.stem
            url = url or recording.resolve().as_uri()
            log.info("%s: extracted%s", recording, "" if clip else
                     " without CLIP (its columns empty: the model sees no CLIP for this recording)")  # fmt: skip
        # .fcpxml and .mlt take the recording's own rate (29.97 too); the others an editing rate of the frames
        rate = recording_rate(recording) if is_video and format_for(args.out, write=True).any_rate else None
        edit_recording(stem, features_dir, args.model, args.out, params, args.corpus, url,
                       None if args.keep_all else args.selection, target_s, target_ratio, rate=rate,
                       render_to=args.render, video=recording if is_video else None, media_dir=args.media)
    return 0
