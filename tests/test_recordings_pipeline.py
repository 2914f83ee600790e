"""End to end from recordings (issue 11): recordings and their edits in `recordings/`, then
`dvc repro` with ``data.raw_dir: data/recordings`` runs extract -> ingest -> the whole
pipeline, and `trackfusion edit` on a recording the model never saw writes an XML that
the FCP adapter reads back.

The recordings are generated here (PyAV): coloured scenes with hard cuts at drawn times
and a tone under some scenes; each edit cuts where its recording's scene changes (a face
cam switched on and off), as an editor might. CLIP comes from a randomly initialised
vision model saved as a local weights folder (no download).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.repository import copy_repository, run, stages_run
from tests.strategies import media
from trackfusion import schema
from trackfusion.io.timeline import export_timeline, import_timeline

pytestmark = pytest.mark.slow
pytest.importorskip("av", reason="the [extract] extra")

SECONDS, FPS, W, H, SR = 20.0, 30, 160, 120, 16_000
RECORDINGS = 6
TINY = {
    "synthetic": {"num_videos": 3, "min_duration_s": 20, "max_duration_s": 20},
    "model": {"d_model": 16, "nhead": 2, "num_encoder_layers": 1, "dim_feedforward": 32, "seq_len": 32},
    "train": {"epochs": 2, "batch_size": 8, "stride": 32},
    "predict": {"context": 8},
}
MAIN = (100.0, 960.0, 540.0)  # the recording, full frame
FACE = (30.0, 1600.0, 850.0)  # a face cam in the corner


def scene_cuts(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(np.arange(2.0, SECONDS - 1.0, 0.5), size=5, replace=False))


def write_recording(path: Path, cuts: np.ndarray, seed: int) -> Path:
    colours = np.random.default_rng(seed).integers(20, 235, (len(cuts) + 1, 3)).astype(np.uint8)

    def picture(i: int, t: float) -> np.ndarray:
        return np.broadcast_to(colours[np.searchsorted(cuts, t, side="right")], (H, W, 3)).copy()

    def sound(t: np.ndarray) -> np.ndarray:
        scene = np.searchsorted(cuts, t, side="right")
        return np.where(scene % 2 == 1, 0.4 * np.sin(2 * np.pi * 330 * t), 0.0)

    return media.make_recording(path, SECONDS, picture, sound, FPS, W, H, SR)


def write_edit(path: Path, stem: str, cuts: np.ndarray) -> None:
    """The recording on track 1 throughout; a face cam on track 2 in every other scene."""
    t = np.arange(int(SECONDS * schema.FPS)) / schema.FPS
    frames = np.zeros((len(t), schema.TRACK_WIDTH), np.float32)
    frames[:, :5] = [1.0, 0.0, *MAIN]
    face_on = np.searchsorted(cuts, t, side="right") % 2 == 1
    frames[face_on, 9:14] = [1.0, 1.0, *FACE]
    export_timeline(frames, path, fps=schema.FPS, name=stem, media_names={0: stem, 1: "face cam.mp4"})


def test_recordings_and_edits_to_a_trained_model_and_a_new_edit(tmp_path_factory: pytest.TempPathFactory,
                                                                clip_folder: Path) -> None:  # fmt: skip
    overrides = {**TINY, "data": {"raw_dir": "data/recordings"},
                 "extract": {"clip": True, "clip_model": str(clip_folder), "visual_every": 3}}  # fmt: skip
    repo = copy_repository(tmp_path_factory.mktemp("repo"), overrides)
    folder = repo / "recordings"
    for i in range(RECORDINGS):
        stem = f"session {i:02d}"
        cuts = scene_cuts(i)
        write_recording(folder / f"{stem}.mp4", cuts, i)
        write_edit(folder / f"{stem}.xml", stem, cuts)

    out = run(["dvc", "repro"], repo, timeout=1500)
    assert {"extract", "ingest", "validate", "align", "normalize", "train_baseline", "train_multimodal", "predict",
            "references", "compare"} <= stages_run(out)  # fmt: skip
    extracted = json.loads((repo / "metrics" / "extract.json").read_text())
    assert len(extracted["extracted"]) == RECORDINGS and not extracted["failed"]
    assert extracted["sources"]["clip_0..511"].startswith("CLIP")
    ingested = json.loads((repo / "metrics" / "ingest.json").read_text())
    assert ingested["imported"] == RECORDINGS and ingested["visual_files"] == RECORDINGS
    summary = json.loads((repo / "metrics" / "validation.json").read_text())["summary"]
    assert summary["videos_ok"] == RECORDINGS and summary["visual_coverage_pct"] > 95
    compare = json.loads((repo / "metrics" / "compare.json").read_text())
    assert 0 <= compare["test"]["cut_f1"]["multimodal"] <= 1

    # a recording the model never saw, edited by the trained model, read back by the FCP adapter
    new = write_recording(tmp_path_factory.mktemp("new") / "unseen take.mp4", scene_cuts(99), 99)
    run(["trackfusion", "edit", str(new), "--out", str(repo / "unseen.xml")], repo)
    edit = import_timeline(repo / "unseen.xml", main_media="unseen take")
    assert len(edit.frames) == pytest.approx(SECONDS * schema.FPS, abs=2)
    assert (edit.frames[:, schema.track_columns("active")] > 0).any()
