"""The corpus: each video simulated, edited and written, then the timelines and the ceiling."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trackfusion import cuts, schema, selection
from trackfusion.atomic import atomic_dir, write_json
from trackfusion.data.synthetic.content import clip_prototypes, simulate_recording
from trackfusion.data.synthetic.editor import Editor
from trackfusion.data.synthetic.event_editor import EventEditor
from trackfusion.data.synthetic.highlight_editor import HighlightEditor
from trackfusion.data.synthetic.faults import FAULT_KINDS, plan_faults
from trackfusion.data.synthetic.files import write_feature_files
from trackfusion.io.sequences import TrackData, write_sequences
from trackfusion.params import SyntheticParams

log = logging.getLogger(__name__)

#: ``synthetic.editor`` -> the editor of the corpus
EDITORS: dict[str, Editor] = {"highlight": HighlightEditor(), "events": EventEditor()}
DEFAULT_EDITOR: Editor = EDITORS[SyntheticParams().editor]
CEILING_DESCRIPTION = (
    "videos: per video, the cut event frames (frames of the edit: its kept frames in order) the synthetic editor"
    " would make if it followed every content event with exactly its base lag and no stickers: the ceiling of any"
    " content-based cut predictor. selection: per video, the [start, end) recording frames it keeps without its"
    " noise: the ceiling of any content-based selection. selection_at_length: the same, asked for the real edit's"
    " length (the target every predictor is given). The same editor's whole noiseless timeline over the kept"
    f" frames, the layout ceiling, is {schema.CEILING_LAYOUT_FILE} beside this file."
)


@dataclass(frozen=True)
class GeneratedVideo:
    """One generated video: its true timeline, and its editor's noiseless twin (the ceilings) beside it."""

    track: TrackData  # the editor's timeline and kept flags
    ceiling_cuts: np.ndarray  # the twin's cut event frames over the kept frames
    ceiling_selection: np.ndarray  # (K, 2) [start, end) recording frames the twin keeps
    ceiling_selection_at_length: np.ndarray  # the same, asked for the edit's length
    ceiling_layout: np.ndarray  # (edit length, 180) the twin's timeline over the kept frames
    fault_details: list[dict[str, Any]]  # one dict per injected fault


def generate_video(
    seed: int,
    index: int,
    params: SyntheticParams,
    fps: int,
    prototypes: np.ndarray,
    faults: list[str],
    out: Path,
    editor: Editor = DEFAULT_EDITOR,
) -> GeneratedVideo:
    """Write video ``index``'s feature files; return its timeline and its ceilings."""
    rng = np.random.default_rng([seed, index])  # the recording stream
    frng = np.random.default_rng([seed, index, 1])  # faults draw apart, so content does not depend on them
    recording = simulate_recording(rng, index, params, fps, prototypes)
    edited = editor.edit(recording, editor.streams(seed, index, rng))
    details = write_feature_files(out / schema.FEATURES_DIR, recording, rng, faults, frng)
    kept = np.ones(recording.n_frames, bool) if edited.kept is None else edited.kept
    noiseless_kept = kept if edited.noiseless_kept is None else edited.noiseless_kept
    at_length = noiseless_kept if edited.noiseless_kept_at_length is None else edited.noiseless_kept_at_length
    track = TrackData(recording.video_id, recording.start_time, edited.timeline,
                      None if kept.all() else kept.astype(np.uint8))
    layout = edited.noiseless[kept].astype(np.float32)  # the edit's frames, in order
    return GeneratedVideo(track, cuts.video_cut_events(layout), selection.segments(noiseless_kept),
                          selection.segments(at_length), layout, details)


def generate_corpus(out_dir: str | Path, params: SyntheticParams, fps: int = 10) -> dict[str, Any]:
    """Write the synthetic corpus (SPEC section 3 layout) to `out_dir`, atomically; return a summary.

    Summary: ``videos``, ``frames``, ``seconds`` (of track), ``fps``, ``seed``,
    ``video_ids``, ``cuts`` (true cut events in all timelines), ``ceiling_cuts`` (cut
    events of the noiseless editor, all videos, as written to ``CEILING_FILE``), ``faults`` (kind -> video ids,
    every kind present, empty lists included) and ``fault_details`` (one dict per injected
    fault: kind, video_id, file and where).
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    prototypes = clip_prototypes(params.seed)
    plan = plan_faults(params.seed, params.num_videos)
    videos: list[TrackData] = []
    details: list[dict[str, Any]] = []
    ceilings: dict[str, list[int]] = {}
    selections: dict[str, list[list[int]]] = {}
    at_length: dict[str, list[list[int]]] = {}
    layouts: dict[str, np.ndarray] = {}
    editor = EDITORS[params.editor]
    with atomic_dir(out_dir) as tmp:
        (tmp / schema.FEATURES_DIR).mkdir()
        for i in range(params.num_videos):
            video = generate_video(params.seed, i, params, fps, prototypes, plan[i], tmp, editor)
            vid = video.track.video_id
            layouts[vid] = video.ceiling_layout
            videos.append(video.track)
            ceilings[vid] = [int(f) for f in video.ceiling_cuts]
            selections[vid] = [[int(a), int(b)] for a, b in video.ceiling_selection]
            at_length[vid] = [[int(a), int(b)] for a, b in video.ceiling_selection_at_length]
            details += video.fault_details
        write_sequences(tmp / schema.SEQUENCES_FILE, videos)
        with open(tmp / schema.CEILING_LAYOUT_FILE, "wb") as fh:
            np.savez_compressed(fh, **layouts)
        write_json(
            tmp / schema.CEILING_FILE,
            {
                "description": CEILING_DESCRIPTION,
                "tolerance_frames": cuts.TOLERANCE,
                "videos": ceilings,
                "selection": selections,
                "selection_at_length": at_length,
            },
        )
    faults: dict[str, list[str]] = {kind: [] for kind in FAULT_KINDS}
    for d in details:
        if d["video_id"] not in faults[d["kind"]]:
            faults[d["kind"]].append(d["video_id"])
    frames = sum(len(v.frames) for v in videos)
    kept_frames = int(sum(v.kept_flags.sum() for v in videos))
    summary = {
        "videos": len(videos),
        "frames": frames,
        "seconds": frames / fps,
        "fps": fps,
        "kept_frames": kept_frames,
        "seed": params.seed,
        "video_ids": [v.video_id for v in videos],
        "cuts": int(sum(len(cuts.video_cut_events(v.frames)) for v in videos)),
        "ceiling_cuts": int(sum(len(c) for c in ceilings.values())),
        "faults": faults,
        "fault_details": details,
    }
    log.info(
        "wrote %d synthetic videos (%.1f min of recording, %.1f min kept, %d cuts, %d without editor noise) to %s"
        " in %.2f s; faults: %s",
        summary["videos"],
        summary["seconds"] / 60,
        kept_frames / fps / 60,
        summary["cuts"],
        summary["ceiling_cuts"],
        out_dir,
        time.perf_counter() - t0,
        ", ".join(f"{k} {len(v)}" for k, v in faults.items() if v) or "none",
    )
    return summary
