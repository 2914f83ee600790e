"""Build a raw corpus (SPEC section 3) from a user's own edits.

Input: a folder of timelines ``<video_id>.{otio,xml,edl}`` and a folder of feature
tables ``<video_id>_features.csv`` / ``<video_id>_visual_features.csv``. Output:
``<out_dir>/sequences.npz`` and ``<out_dir>/features/``, the layout that
``data.raw_dir`` points at, so real edits and the synthetic corpus go through the same
pipeline. The CSVs are hard-linked (copied across file systems), never parsed here:
``align`` parses each once. A timeline that cannot be imported is logged with its
file, counted and skipped; the others go on.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from trackfusion import schema
from trackfusion.atomic import atomic_dir, write_json
from trackfusion.io.sequences import TrackData, write_sequences
from trackfusion.params import Params, command_params
from trackfusion.io.timeline import ADAPTERS, TimelineError, import_timeline

log = logging.getLogger(__name__)


class IngestError(ValueError):
    """Nothing could be ingested (no timeline found, or none importable)."""


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


def check_output_folder(out_dir: Path, inputs: tuple[Path, ...]) -> None:
    """IngestError unless replacing `out_dir` whole loses nothing but an earlier ingest's output.

    The output folder is swapped in atomically, so whatever it held goes: it must not
    hold (or be) an input, nor files that an earlier ingest did not write.
    """
    out = out_dir.resolve()
    for folder in inputs:
        folder = folder.resolve()
        if folder == out or out in folder.parents:
            raise IngestError(f"--out {out_dir} holds the input folder {folder} and would be replaced with it; "
                              "write the corpus to a new folder")
    if out_dir.is_dir():
        ours = {schema.SEQUENCES_FILE, schema.FEATURES_DIR}
        other = sorted(p.name for p in out_dir.iterdir() if p.name not in ours)
        if other:
            shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
            raise IngestError(f"--out {out_dir} holds files an ingest did not write ({shown}); replacing it would "
                              "delete them: write the corpus to a new or empty folder")
    elif out_dir.exists():
        raise IngestError(f"--out {out_dir} is a file, not a folder")


_FLOAT_COUNTS = ("timeline_s_without_recording",)  # seconds, summed over the timelines like the int counts


def _is_count(key: str, value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or key in _FLOAT_COUNTS


def ingest_timelines(timelines_dir: str | Path, features_dir: str | Path, out_dir: str | Path, params: Params,
                     allow_empty: bool = False) -> dict[str, Any]:  # fmt: skip
    """Import every timeline of `timelines_dir` and lay out `out_dir` as a raw corpus.

    Returns a summary: counts, the failures with their files and errors, the videos
    missing a feature table, and each imported timeline's report. A folder without
    timelines is an IngestError, or with `allow_empty` (the pipeline's `ingest` stage before
    any recording is added) an empty corpus, which `validate` refuses if pointed at.
    """
    timelines_dir, features_dir, out_dir = Path(timelines_dir), Path(features_dir), Path(out_dir)
    if not timelines_dir.is_dir():
        raise IngestError(f"{timelines_dir}: timelines folder not found")
    check_output_folder(out_dir, (timelines_dir, features_dir))
    # per video, the richest format first (an EDL carries no geometry): .otio, then .xml, then .edl
    rank = {ext: i for i, ext in enumerate(ADAPTERS)}
    files = sorted((p for p in timelines_dir.iterdir() if p.is_file() and p.suffix.lower() in ADAPTERS),
                   key=lambda p: (p.stem, rank[p.suffix.lower()], p.name))
    if not files and not allow_empty:
        raise IngestError(f"{timelines_dir}: no timeline files ({', '.join(ADAPTERS)})")
    if not files:
        log.info("%s: no timeline files (%s) yet: an empty corpus in %s", timelines_dir, ", ".join(ADAPTERS), out_dir)
    tp = params.timeline
    videos: list[TrackData] = []
    reports: dict[str, dict] = {}
    failures: list[dict[str, str]] = []
    duplicates: list[str] = []
    totals: Counter = Counter()
    for path in files:
        video_id = path.stem
        if video_id in reports:
            duplicates.append(str(path))
            log.warning("%s: video '%s' was already imported from a richer format (.otio > .xml > .edl); skipped",
                        path, video_id)
            continue
        try:
            imported = import_timeline(path, fps=params.data.fps, asset_patterns=tp.asset_patterns, main_media=video_id,
                                       main_asset=tp.main_asset, unmatched_asset=tp.unmatched_asset, edl_rate=tp.edl_rate,
                                       skip_patterns=tp.skip_patterns)
        except TimelineError as exc:
            failures.append({"file": str(path), "error": str(exc)})
            log.error("skipping timeline: %s", exc)
            continue
        # the frames cover the recording; what the edit dropped is kept 0 (sequences.npz's `kept`)
        videos.append(TrackData(video_id, imported.start_time, imported.frames,
                                None if imported.kept.all() else imported.kept))
        reports[video_id] = imported.report
        totals.update({k: v for k, v in imported.report.items() if _is_count(k, v)})
    if files and not videos:
        raise IngestError(f"{timelines_dir}: none of {len(files)} timelines could be imported; first error: "
                          f"{failures[0]['error'] if failures else 'duplicates only'}")

    missing: dict[str, list[str]] = {"audio": [], "visual": []}
    linked = Counter()
    with atomic_dir(out_dir) as tmp:
        features_out = tmp / schema.FEATURES_DIR
        features_out.mkdir()
        for video_id in (v.video_id for v in videos):
            for modality, name in (("audio", schema.audio_file_name(video_id)), ("visual", schema.visual_file_name(video_id))):
                src = features_dir / name
                if src.is_file():
                    _link_or_copy(src, features_out / name)
                    linked[modality] += 1
                else:
                    missing[modality].append(video_id)
                    log.warning("video '%s': no %s feature table (%s); it goes on without that modality",
                                video_id, modality, src)
        write_sequences(tmp / schema.SEQUENCES_FILE, videos)
    summary = {
        "timelines_found": len(files),
        "imported": len(videos),
        "failed": len(failures),
        "duplicates_skipped": len(duplicates),
        "frames": int(sum(len(v.frames) for v in videos)),
        "audio_files": linked["audio"],
        "visual_files": linked["visual"],
        "missing_audio": missing["audio"],
        "missing_visual": missing["visual"],
        "failures": failures,
        "duplicates": duplicates,
        "totals": dict(sorted(totals.items())),
        "videos": reports,
    }
    log.info("ingest: %d of %d timelines imported (%d frames, %d failed), %d audio and %d visual tables, into %s",
             len(videos), len(files), summary["frames"], len(failures), linked["audio"], linked["visual"], out_dir)
    return summary


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--timelines", required=True, type=Path, help="folder of <video_id>.{otio,xml,edl}")
    parser.add_argument("--features", required=True, type=Path, help="folder of <video_id>_features.csv and _visual_features.csv")
    parser.add_argument("--out", required=True, type=Path, help="raw corpus folder to write (replaced atomically)")
    parser.add_argument("--params", default=None, type=Path,
                        help="params file (data.fps, timeline.*; default: ./params.yaml, else the defaults)")
    parser.add_argument("--report", type=Path, default=None, help="also write the summary as JSON here")
    return parser


def run(args: argparse.Namespace) -> int:
    params = command_params(args.params)
    try:
        summary = ingest_timelines(args.timelines, args.features, args.out, params)
    except IngestError as exc:
        log.error("%s", exc)
        return 1
    if args.report is not None:
        write_json(args.report, summary)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = add_arguments(argparse.ArgumentParser(prog="ingest", description=__doc__,
                                                formatter_class=argparse.RawDescriptionHelpFormatter))
    return run(parser.parse_args(argv))
