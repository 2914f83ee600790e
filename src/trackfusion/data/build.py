"""Corpus-level drivers of the `align` and `normalize` stages.

Both stream one video at a time into a :class:`corpus.CorpusWriter`, so peak memory is
one video's arrays whatever the size of the corpus, and the output folder appears only
when everything is written (an interrupted run leaves the previous corpus intact).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from trackfusion import schema
from trackfusion.io import features
from trackfusion.io import sequences
from trackfusion.data.alignment import FeatureAligner
from trackfusion.data.corpus import SPLITS, Corpus, CorpusWriter, assign_splits
from trackfusion.data.normalization import (
    NORMALIZATION_FILE,
    AudioFeaturePreprocessor,
    TrackPreprocessor,
    VisualFeaturePreprocessor,
    save_preprocessors,
)
from trackfusion.params import Params

log = logging.getLogger(__name__)

_ASSET_COLUMNS = schema.track_columns("asset_id")
_LAST_ASSET = schema.NUM_ASSET_CLASSES - 1


def _fault_counts() -> dict[str, int]:
    return {
        "broken_track_sequence": 0,
        "missing_audio_file": 0,
        "missing_visual_file": 0,
        "no_feature_files": 0,  # videos with neither file
        "corrupt_audio_file": 0,
        "corrupt_visual_file": 0,
        "asset_id_out_of_range": 0,  # track-frames mapped to the last class
        "unsorted_rows": 0,
        "duplicate_rows": 0,
        "nonfinite_samples": 0,
        "bridged_entries": 0,
        "zero_filled_entries": 0,
        "gaps_over_warn": 0,
    }


def _usable_videos(reader: sequences.SequenceReader, skipped: list[dict[str, str]]) -> list[str]:
    """Videos whose track sequence and kept flags read cleanly, as the align loop reads them (a first
    pass: splits need the final list)."""
    usable = []
    for vid in reader.video_ids:
        try:
            reader.track(vid)
        except sequences.TrackSequenceError as exc:
            log.error("video %r skipped: broken track sequence: %s", vid, exc)
            skipped.append({"video_id": vid, "reason": f"broken track sequence: {exc}"})
            continue
        usable.append(vid)
    return usable


def _read_table(path: Path | None, modality: str, vid: str, faults: dict[str, int]) -> Any:
    """The parsed table, or None (missing or corrupt: that modality is unavailable)."""
    if path is None:
        faults[f"missing_{modality}_file"] += 1
        return None
    try:
        table = features.read_features(path, modality)
    except (features.FeatureFileError, OSError, UnicodeDecodeError) as exc:
        log.error("video %r: %s unavailable, feature file unusable: %s", vid, modality, exc)
        faults[f"corrupt_{modality}_file"] += 1
        return None
    faults["unsorted_rows"] += table.issues.unsorted_rows
    faults["duplicate_rows"] += table.issues.duplicate_rows
    return table


def _remap_assets(track: np.ndarray, vid: str, faults: dict[str, int]) -> None:
    """Asset ids outside [0, 10) become the last class, counted and warned (in place)."""
    assets = track[:, _ASSET_COLUMNS]  # (T, 20) a copy (strided slice of columns)
    bad = (assets < 0) | (assets >= schema.NUM_ASSET_CLASSES)
    n_bad = int(bad.sum())
    if n_bad:
        values = np.unique(assets[bad])
        log.warning(
            "video %r: %d track-frame(s) with asset id outside [0, %d) (e.g. %s) mapped to class %d",
            vid, n_bad, schema.NUM_ASSET_CLASSES, ", ".join(f"{v:g}" for v in values[:5]), _LAST_ASSET,
        )
        assets[bad] = _LAST_ASSET
        track[:, _ASSET_COLUMNS] = assets
        faults["asset_id_out_of_range"] += n_bad


@dataclasses.dataclass
class _AlignTally:
    """What `align_corpus` counts over its videos, kept out of the loop."""

    faults: dict[str, int] = dataclasses.field(default_factory=_fault_counts)
    frames: int = 0
    videos_with_features: int = 0
    files_found: dict[str, int] = dataclasses.field(default_factory=lambda: {m: 0 for m in schema.FEATURE_MODALITIES})
    totals: dict[str, dict[str, float]] = dataclasses.field(
        default_factory=lambda: {m: {"exact": 0.0, "interpolated": 0.0, "unavailable": 0.0} for m in schema.MODALITIES})

    def files(self, vf: features.FeatureFiles) -> None:
        if vf.audio is None and vf.visual is None:
            self.faults["no_feature_files"] += 1
        for m in schema.FEATURE_MODALITIES:
            self.files_found[m] += vf.get(m) is not None

    def aligned(self, stats: dict[str, Any], n: int, with_features: bool) -> None:
        self.frames += n
        self.videos_with_features += with_features
        for m in schema.MODALITIES:
            for k in self.totals[m]:
                self.totals[m][k] += stats[m][k] * n
        for m in schema.FEATURE_MODALITIES:
            st, clip = stats[m], stats[m].get("clip", {})
            for fault, key in (("nonfinite_samples", "missing_samples"), ("bridged_entries", "bridged_entries"),
                               ("zero_filled_entries", "zero_filled_entries")):  # fmt: skip
                self.faults[fault] += st.get(key, 0) + clip.get(key, 0)
            self.faults["gaps_over_warn"] += st.get("gaps_over_warn", 0)

    def modalities(self) -> dict[str, dict[str, float]]:
        return {m: {k: round(v / self.frames, 6) if self.frames else 0.0 for k, v in self.totals[m].items()}
                for m in schema.MODALITIES}  # fmt: skip


def align_corpus(raw_dir: str | Path, out_dir: str | Path, params: Params) -> dict[str, Any]:
    """Align every video of `raw_dir` (SPEC section 3) into the corpus `out_dir`; returns the summary.

    Faults are handled as SPEC section 8 says: a broken track sequence skips its video; a
    missing or corrupt feature file makes that modality unavailable (the video is kept),
    each counted and logged with the video id and the file.
    """
    started = time.perf_counter()
    raw_dir = Path(raw_dir)
    fps = float(params.data.fps)
    reader = sequences.SequenceReader(raw_dir / schema.SEQUENCES_FILE)
    tally = _AlignTally()
    skipped: list[dict[str, str]] = []
    usable = _usable_videos(reader, skipped)
    tally.faults["broken_track_sequence"] = len(skipped)
    files = features.discover_features(raw_dir, usable)
    splits = assign_splits(usable, params.data.val_fraction, params.data.test_fraction, params.data.split_seed)
    aligner = FeatureAligner.from_params(params.align)
    meta = {
        "raw_dir": str(raw_dir),
        "align": dataclasses.asdict(params.align),
        "split_seed": params.data.split_seed,
        "val_fraction": params.data.val_fraction,
        "test_fraction": params.data.test_fraction,
    }
    with CorpusWriter(out_dir, fps, meta=meta) as writer:
        for vid in tqdm(usable, desc="align", unit="video", leave=False):
            data = reader.track(vid)
            track, start = data.frames, data.start_time  # (T, 180) float32, frame 0's recording time
            _remap_assets(track, vid, tally.faults)
            times = data.time_map(fps).frame_times(len(track))  # (T,)
            tally.files(files[vid])
            tables = {m: _read_table(files[vid].get(m), m, vid, tally.faults) for m in schema.FEATURE_MODALITIES}
            if files[vid].missing or any(t is None for t in tables.values()):
                unavailable = [m for m in schema.FEATURE_MODALITIES if tables[m] is None]
                log.info("video %r kept with %s unavailable", vid, " and ".join(unavailable))
            with_features = any(t is not None for t in tables.values())
            aligned = aligner.align_features(times, tables["audio"], tables["visual"], video_id=vid)
            del tables  # the parsed CSVs are the largest objects of a video: free them before writing
            writer.append(
                vid, splits[vid], start,
                audio=aligned.audio, visual=aligned.visual_scalars, clip=aligned.clip,
                track=track, mask=aligned.mask, times=times, kept=data.kept_flags.astype(bool),
            )
            tally.aligned(aligned.stats, len(times), with_features)
        writer.meta["has_features"] = tally.videos_with_features > 0
    return _align_summary(raw_dir, reader, usable, skipped, splits, tally, fps, time.perf_counter() - started)


def _align_summary(raw_dir: Path, reader: sequences.SequenceReader, usable: list[str], skipped: list[dict[str, str]],
                   splits: dict[str, str], tally: _AlignTally, fps: float, wall: float) -> dict[str, Any]:  # fmt: skip
    frames, has_features = tally.frames, tally.videos_with_features > 0
    summary: dict[str, Any] = {
        "videos_in": len(reader),
        "videos_kept": len(usable),
        "videos_skipped": len(skipped),
        "skipped": skipped,
        "videos_with_features": tally.videos_with_features,
        "feature_files_found": tally.files_found,
        "has_features": has_features,
        "faults": tally.faults,
        "modalities": tally.modalities(),
        "splits": {s: sum(1 for v in usable if splits[v] == s) for s in SPLITS},
        "frames": frames,
        "video_seconds": round(frames / fps, 3),
    }
    if not has_features:
        summary["message"] = (
            f"no video in {raw_dir} has a usable feature file: every modality but the track is unavailable; "
            "the multimodal stage refuses this corpus, the track-only baseline still runs"
        )
        log.warning(summary["message"])
    log.info(
        "aligned %d of %d videos (%d skipped), %d frames (%.1f s of video) in %.2f s (%.0f frames/s); "
        "audio %.1f %% and visual %.1f %% of frames unavailable",
        len(usable), len(reader), len(skipped), frames, frames / fps, wall, frames / wall if wall > 0 else 0.0,
        100 * summary["modalities"]["audio"]["unavailable"], 100 * summary["modalities"]["visual"]["unavailable"],
    )  # fmt: skip
    return summary


def normalize_corpus(aligned_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Fit the preprocessors on the train videos of `aligned_dir` and write the normalised corpus to `out_dir`.

    The output has the same layout, videos, splits and meta, plus ``normalization.json``;
    all of it appears at once.
    """
    started = time.perf_counter()
    corpus = Corpus(aligned_dir)
    audio, visual, track = AudioFeaturePreprocessor(), VisualFeaturePreprocessor(), TrackPreprocessor()
    train = corpus.split_videos("train")
    train_frames = 0
    for v in tqdm(train, desc="fit normalisation", unit="video", leave=False):  # train only: no val/test leakage
        arr = corpus.video_arrays(v.video_id)
        mask = np.asarray(arr["mask"])  # (T, 3)
        kept = np.asarray(arr["kept"][:, 0])  # the track is the edit's: its kept frames only
        audio.partial_fit(arr["audio"], mask[:, 0])
        visual.partial_fit(arr["visual"], mask[:, 1])
        track.partial_fit(arr["track"], mask[:, 2] & kept)
        train_frames += v.length
    for p in (audio, visual, track):
        p.finalize()
    if not train:
        log.warning("%s has no train videos: normalisation left as identity (mean 0, std 1)", aligned_dir)

    meta = {**corpus.meta, "normalized_from": str(aligned_dir), "normalization": NORMALIZATION_FILE}
    with CorpusWriter(out_dir, corpus.fps, meta=meta) as writer:
        for v in tqdm(corpus.videos, desc="normalize", unit="video", leave=False):
            arr = corpus.video_arrays(v.video_id)
            mask = np.asarray(arr["mask"])
            writer.append(
                v.video_id, v.split, v.start_time,
                audio=audio.transform(arr["audio"], mask[:, 0]),
                visual=visual.transform(arr["visual"], mask[:, 1]),
                clip=visual.transform_clip(np.asarray(arr["clip"]), mask[:, 1]),
                track=track.transform(arr["track"]),
                mask=mask,
                times=arr["times"],
                kept=arr["kept"],
            )
        save_preprocessors(writer.extra_file(NORMALIZATION_FILE), audio, visual, track)
    wall = time.perf_counter() - started
    summary = {
        "videos": len(corpus.videos),
        "train_videos": len(train),
        "train_frames": train_frames,
        "frames": corpus.total_frames,
        "normalization": {"audio": audio.to_dict(), "visual": visual.to_dict(), "track": track.to_dict()},
    }
    log.info(
        "normalised %d videos (%d frames); statistics from %d train videos (%d frames) in %.2f s",
        len(corpus.videos), corpus.total_frames, len(train), train_frames, wall,
    )
    return summary
