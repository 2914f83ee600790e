"""Checks of the raw corpus before alignment, and the report for metrics/validation.json.

For every video of ``sequences.npz`` and each feature modality: is the file there, does
it read (else the error message), how many rows, were rows out of order or repeated,
what share of track frames has a sample within ``align.tolerance_s`` (coverage,
property 27), which gaps between samples exceed ``align.max_interp_gap_s`` (property 28),
do the widths match the contract (audio 5, visual 522, track 180; property 29), how many
empty or infinite values per column, and how late the features start or how early they
end relative to the track. Everything per video is vectorised over frames with one
``np.searchsorted``; the only Python loops run over videos and over the gaps found.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from trackfusion import schema
from trackfusion.timemap import TimeMap
from trackfusion.io.features import FeatureFileError, FeatureTable, discover_features, read_features
from trackfusion.io.sequences import SequenceReader, TrackSequenceError
from trackfusion.params import AlignParams, Params

log = logging.getLogger(__name__)

# Float fuzz allowed on the tolerance and gap thresholds: frame times are computed as
# start + i / fps, so a sample exactly 0.05 s away may be 0.05000000000000071 away.
EPS_S = 1e-9


def frame_coverage(frames: np.ndarray, samples: np.ndarray, tolerance_s: float) -> np.ndarray:
    """(T,) bool: frame has a sample within `tolerance_s`; `samples` sorted ascending."""
    if len(samples) == 0:
        return np.zeros(len(frames), dtype=bool)
    right = np.searchsorted(samples, frames)  # (T,) first sample >= frame
    left = np.clip(right - 1, 0, len(samples) - 1)
    right = np.clip(right, 0, len(samples) - 1)
    nearest = np.minimum(np.abs(frames - samples[left]), np.abs(samples[right] - frames))  # (T,)
    return nearest <= tolerance_s + EPS_S


def find_gaps(samples: np.ndarray, max_gap_s: float) -> list[dict[str, float]]:
    """Gaps between consecutive samples longer than `max_gap_s`, as {start, end, length_s}."""
    steps = np.diff(samples)
    idx = np.flatnonzero(steps > max_gap_s + EPS_S)
    return [
        {"start": float(samples[i]), "end": float(samples[i + 1]), "length_s": float(steps[i])} for i in idx
    ]


def dims_check(expected: int, found: int | None) -> dict[str, Any]:
    return {"expected": expected, "found": found, "ok": found == expected}


def _found_width(modality: str, err: FeatureFileError) -> int | None:
    """Input columns a file provides when the reader stopped at missing columns; None if unknown."""
    if not err.missing:
        return None
    if modality == "audio":
        inputs = schema.input_names(schema.AUDIO_INPUTS)
        missing = {"speaker_turn" if c == schema.SPEAKER_ID else c for c in err.missing}
    else:
        inputs = schema.input_names(schema.VISUAL_INPUTS)
        missing = set(err.missing)
    return len(inputs) - len(missing & set(inputs))


def check_modality(
    video_id: str, modality: str, table: FeatureTable, frames: np.ndarray, align: AlignParams
) -> dict[str, Any]:
    """Coverage, gaps, order, dimensions and non-finite counts of one readable feature table."""
    covered = frame_coverage(frames, table.times, align.tolerance_s)
    gaps = find_gaps(table.times, align.max_interp_gap_s)
    for gap in gaps:
        if gap["length_s"] > align.warn_gap_s:
            log.warning(
                "video '%s': %s features have a %.2f s gap from %.2f s to %.2f s",
                video_id, modality, gap["length_s"], gap["start"], gap["end"],
            )
    first, last = float(table.times[0]), float(table.times[-1])
    n_frames = len(frames)
    return {
        "present": True,
        "error": None,
        "path": str(table.path),
        "rows": len(table),
        "first_time": first,
        "last_time": last,
        "monotonic": table.issues.unsorted_rows == 0 and table.issues.duplicate_rows == 0,
        "unsorted_rows": table.issues.unsorted_rows,
        "duplicate_rows": table.issues.duplicate_rows,
        "covered_frames": int(np.count_nonzero(covered)),
        "coverage_pct": float(100.0 * np.count_nonzero(covered) / n_frames) if n_frames else 0.0,
        "gaps": gaps,
        "gaps_over_warn": sum(g["length_s"] > align.warn_gap_s for g in gaps),
        "dims": dims_check(schema.WIDTHS[modality], table.width),
        "nonfinite": dict(table.issues.nonfinite),
        "nonfinite_total": table.issues.nonfinite_total,
        # how far the features miss the ends of the track (0 when they cover them)
        "starts_late_s": max(0.0, first - float(frames[0])) if n_frames else 0.0,
        "ends_early_s": max(0.0, float(frames[-1]) - last) if n_frames else 0.0,
    }


def _unavailable(modality: str, path: Path | None, error: str | None, found: int | None) -> dict[str, Any]:
    return {
        "present": path is not None,
        "error": error,
        "path": None if path is None else str(path),
        "rows": 0,
        "covered_frames": 0,
        "coverage_pct": 0.0,
        "gaps": [],
        "gaps_over_warn": 0,
        "dims": dims_check(schema.WIDTHS[modality], found),
        "nonfinite": {},
        "nonfinite_total": 0,
    }


def validate_video(
    video_id: str, reader: SequenceReader, files: dict[str, Path | None], params: Params
) -> dict[str, Any]:
    """The report entry of one video (see :func:`validate_raw`)."""
    entry: dict[str, Any] = {"video_id": video_id, "start_time": reader.start_time(video_id)}
    try:
        data = reader.track(video_id)
    except TrackSequenceError as exc:
        log.warning("video '%s': broken track sequence, skipped: %s", video_id, exc)
        entry.update(frames=0, track={"error": str(exc), "dims": dims_check(schema.TRACK_WIDTH, reader.width)})
        return entry
    track, kept = data.frames, int(data.kept_flags.sum())
    frames = TimeMap(params.data.fps, entry["start_time"]).frame_times(len(track))
    entry["frames"] = len(track)
    entry["kept_frames"] = kept  # the frames the edit plays; the rest the editor dropped
    entry["kept_pct"] = round(100.0 * kept / len(track), 4)
    entry["end_time"] = float(frames[-1])
    entry["track"] = {"error": None, "dims": dims_check(schema.TRACK_WIDTH, track.shape[1])}
    for modality in schema.FEATURE_MODALITIES:
        path = files[modality]
        if path is None:
            entry[modality] = _unavailable(modality, None, None, None)
            continue
        try:
            table = read_features(path, modality)
        except FeatureFileError as exc:
            log.warning("video '%s': %s features unavailable: %s", video_id, modality, exc)
            entry[modality] = _unavailable(modality, path, str(exc), _found_width(modality, exc))
            continue
        entry[modality] = check_modality(video_id, modality, table, frames, params.align)
    return entry


def summarize(videos: list[dict[str, Any]]) -> dict[str, Any]:
    """Headline numbers over all videos, flat so that ``dvc metrics show`` lists them."""
    ok = [v for v in videos if v["track"]["error"] is None]
    total_frames = sum(v["frames"] for v in ok)
    summary: dict[str, Any] = {
        "videos": len(videos),
        "videos_ok": len(ok),
        "frames": total_frames,
        "kept_pct": round(100.0 * sum(v["kept_frames"] for v in ok) / total_frames, 4) if total_frames else 0.0,
        "broken_sequences": len(videos) - len(ok),
        "track_dim_mismatches": sum(not v["track"]["dims"]["ok"] for v in videos),
    }
    for m in schema.FEATURE_MODALITIES:
        entries = [v[m] for v in ok]
        covered = sum(e["covered_frames"] for e in entries)
        summary.update({
            f"{m}_missing": sum(not e["present"] for e in entries),
            f"{m}_read_errors": sum(e["error"] is not None for e in entries),
            # frame-weighted: covered frames / all frames x 100, a missing or unreadable file covering none
            f"{m}_coverage_pct": round(100.0 * covered / total_frames, 4) if total_frames else 0.0,
            f"{m}_mean_video_coverage_pct": round(float(np.mean([e["coverage_pct"] for e in entries])), 4)
            if entries else 0.0,
            f"{m}_gaps": sum(len(e["gaps"]) for e in entries),
            f"{m}_gaps_over_warn": sum(e["gaps_over_warn"] for e in entries),
            f"{m}_unsorted_rows": sum(e.get("unsorted_rows", 0) for e in entries),
            f"{m}_duplicate_rows": sum(e.get("duplicate_rows", 0) for e in entries),
            f"{m}_nonfinite_values": sum(e["nonfinite_total"] for e in entries),
            f"{m}_dim_mismatches": sum(e["error"] is None and e["present"] and not e["dims"]["ok"]
                                        for e in entries),
            f"{m}_starts_late": sum(e.get("starts_late_s", 0.0) > 0 for e in entries),
            f"{m}_ends_early": sum(e.get("ends_early_s", 0.0) > 0 for e in entries),
        })
    summary["read_errors"] = summary["audio_read_errors"] + summary["visual_read_errors"]
    summary["videos_without_features"] = sum(
        all(v[m]["error"] is not None or not v[m]["present"] for m in schema.FEATURE_MODALITIES) for v in ok
    )
    return summary


def validate_raw(raw_dir: str | Path, params: Params) -> tuple[dict[str, Any], str]:
    """Validate ``raw_dir`` (SPEC section 3 layout); returns (JSON-able report, Markdown report).

    The report is ``{"summary": {...flat numbers...}, "params": {...}, "videos": [...]}``;
    ``videos`` keeps ``sequences.npz`` order. A missing or unreadable sequences.npz raises
    (nothing can be checked); a broken sequence or feature file is reported and counted.
    """
    raw_dir = Path(raw_dir)
    reader = SequenceReader(raw_dir / schema.SEQUENCES_FILE)
    found = discover_features(raw_dir, reader.video_ids)
    videos = [
        validate_video(vid, reader, {m: found[vid].get(m) for m in schema.FEATURE_MODALITIES}, params)
        for vid in reader.video_ids
    ]
    report = {
        "summary": summarize(videos),
        "params": {
            "raw_dir": str(raw_dir),
            "fps": params.data.fps,
            "tolerance_s": params.align.tolerance_s,
            "max_interp_gap_s": params.align.max_interp_gap_s,
            "warn_gap_s": params.align.warn_gap_s,
            "expected_dims": dict(schema.WIDTHS),
        },
        "videos": videos,
    }
    s = report["summary"]
    log.info(
        "validated %d videos (%d frames): coverage audio %.1f %%, visual %.1f %%; %d read errors, "
        "%d broken sequences, %d gaps over %.1f s",
        s["videos"], s["frames"], s["audio_coverage_pct"], s["visual_coverage_pct"], s["read_errors"],
        s["broken_sequences"], s["audio_gaps"] + s["visual_gaps"], params.align.max_interp_gap_s,
    )
    return report, to_markdown(report)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: dict[str, Any]) -> str:
    """A readable report: headline table, one row per video, then every problem found."""
    s, p = report["summary"], report["params"]
    lines = [
        "# Raw data validation",
        "",
        f"`{p['raw_dir']}`: {s['videos']} videos, {s['frames']} track frames at {p['fps']} fps, "
        f"{s['kept_pct']:.1f} % of them kept by the edits (the rest dropped). "
        f"A frame is covered when a sample lies within {p['tolerance_s']} s; gaps are listed when "
        f"longer than {p['max_interp_gap_s']} s (warned over {p['warn_gap_s']} s).",
        "",
        "| | audio | visual |",
        "|---|---|---|",
    ]
    for label, key in (
        ("coverage % (frames)", "coverage_pct"),
        ("mean coverage % per video", "mean_video_coverage_pct"),
        ("videos missing the file", "missing"),
        ("read errors", "read_errors"),
        ("gaps", "gaps"),
        ("gaps over warn limit", "gaps_over_warn"),
        ("rows out of order", "unsorted_rows"),
        ("duplicate-time rows", "duplicate_rows"),
        ("empty / non-finite values", "nonfinite_values"),
        ("starts late (videos)", "starts_late"),
        ("ends early (videos)", "ends_early"),
    ):
        a, v = s["audio_" + key], s["visual_" + key]
        lines.append(f"| {label} | {a:.1f} | {v:.1f} |" if isinstance(a, float) else f"| {label} | {a} | {v} |")
    lines += [
        "",
        f"Broken track sequences: {s['broken_sequences']}. Videos without any usable features: "
        f"{s['videos_without_features']}.",
        "",
        "## Videos",
        "",
        "| video | frames | kept % | audio cov % | visual cov % | audio gaps | visual gaps | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    problems: list[str] = []
    for v in report["videos"]:
        vid = v["video_id"]
        if v["track"]["error"] is not None:
            lines.append(f"| {_cell(vid)} | - | - | - | - | - | - | broken track sequence |")
            problems.append(f"- `{vid}`: track sequence broken: {v['track']['error']}")
            continue
        notes = []
        for m in schema.FEATURE_MODALITIES:
            e = v[m]
            if not e["present"]:
                notes.append(f"no {m} file")
                problems.append(f"- `{vid}`: no {m} feature file")
                continue
            if e["error"] is not None:
                notes.append(f"{m} unreadable")
                problems.append(f"- `{vid}`: {m} file unreadable: {e['error']}")
                continue
            if not e["dims"]["ok"]:
                problems.append(f"- `{vid}`: {m} width {e['dims']['found']}, expected {e['dims']['expected']}")
            if not e["monotonic"]:
                notes.append(f"{m} order fixed")
                problems.append(f"- `{vid}`: {m} had {e['unsorted_rows']} rows out of order and "
                                f"{e['duplicate_rows']} duplicate times (sorted, first kept)")
            if e["nonfinite_total"]:
                cols = ", ".join(f"{c} {n}" for c, n in list(e["nonfinite"].items())[:6])
                more = " ..." if len(e["nonfinite"]) > 6 else ""
                problems.append(f"- `{vid}`: {m} empty/non-finite values: {cols}{more}")
            if e["starts_late_s"] > 0 or e["ends_early_s"] > 0:
                notes.append(f"{m} late {e['starts_late_s']:.1f} s / early {e['ends_early_s']:.1f} s")
            for g in e["gaps"]:
                problems.append(f"- `{vid}`: {m} gap {g['start']:.2f}-{g['end']:.2f} s ({g['length_s']:.2f} s)")
        lines.append(
            f"| {_cell(vid)} | {v['frames']} | {v['kept_pct']:.1f} | {v['audio']['coverage_pct']:.1f} "
            f"| {v['visual']['coverage_pct']:.1f} "
            f"| {len(v['audio']['gaps'])} | {len(v['visual']['gaps'])} | {_cell('; '.join(notes))} |"
        )
    lines += ["", "## Problems", ""] + (problems or ["None found."])
    return "\n".join(lines) + "\n"
