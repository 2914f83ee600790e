"""The reference predictors on tiny corpora whose answer is known (experiment/references.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trackfusion import schema
from trackfusion.data.corpus import CorpusWriter
from trackfusion.experiment import references

SCENE = [c.name for c in schema.VISUAL_SCALARS].index("scene_change")
LENGTH = 120


def track_cutting_at(events: list[int], length: int = LENGTH) -> np.ndarray:
    """(T, 180): track 0 always on, its asset switching between 1 and 2 at each event frame."""
    track = np.zeros((length, schema.TRACK_WIDTH), np.float32)
    asset = 1.0
    for t in range(length):
        if t in events:
            asset = 3.0 - asset
        track[t, 0], track[t, 1] = 1.0, asset
    return track


def write_known_corpus(path: Path, videos: list[tuple[str, str, list[int], list[int]]]) -> Path:
    """One video per (id, split, true cut frames, frames where scene_change jumps to 0.9)."""
    with CorpusWriter(path, fps=schema.FPS, meta={"source": "tests.test_references"}) as writer:
        for vid, split, events, scenes in videos:
            visual = np.zeros((LENGTH, schema.VISUAL_SCALAR_WIDTH), np.float32)
            visual[scenes, SCENE] = 0.9
            writer.append(vid, split, 0.0, audio=np.zeros((LENGTH, schema.AUDIO_WIDTH), np.float32), visual=visual,
                          clip=np.zeros((LENGTH, schema.CLIP_DIM), np.float16), track=track_cutting_at(events),
                          mask=np.ones((LENGTH, 3), bool), times=(np.arange(LENGTH) / schema.FPS)[:, None])
    return path


def test_the_content_rule_follows_scene_changes_and_scores_perfectly(tmp_path):
    # the editor cuts 2 frames after every scene change (within the +-5-frame match, so every lag ties);
    # the periodic cutter cannot follow the uneven gaps
    scenes = {"a": [10, 31, 70, 95], "b": [5, 50, 58, 100], "c": [20, 44, 90], "d": [12, 66, 80]}
    corpus = write_known_corpus(tmp_path / "c", [
        (f"video {k}", split, [s + 2 for s in v], v)
        for (k, v), split in zip(scenes.items(), ("train", "train", "val", "test"))
    ])
    result = references.run_references(corpus)
    rows = result["references"]
    assert result["videos"] == 1 and rows["content_rule"]["scene"] <= 0.9
    assert rows["content_rule"]["cut_f1"] == 1.0 and rows["content_rule"]["tuned_f1"] == 1.0
    assert rows["never"]["cut_f1"] == 0.0 and rows["never"]["cut_recall"] == 0.0
    assert rows["periodic"]["cut_f1"] < 1.0
    assert rows["random"]["rate_per_frame"] == pytest.approx(8 / (2 * (LENGTH - 1)))  # train: 8 cuts
    assert "ceiling" not in rows  # no raw folder: a user's corpus has no ceiling
    # each test video's counts ride along for compare's intervals (the stage writes them apart)
    assert rows["content_rule"]["per_video"] == {"video d": {"tp": 3, "fp": 0, "fn": 0}}
    assert rows["never"]["per_video"] == {"video d": {"tp": 0, "fp": 0, "fn": 3}}


def test_the_content_rule_cannot_follow_an_editor_that_ignores_the_content(tmp_path):
    corpus = write_known_corpus(tmp_path / "c", [
        ("video a", "train", [20, 60, 100], [40, 80]), ("video b", "val", [15, 55, 95], [35, 75]),
        ("video t", "test", [25, 65, 105], [45, 85]),
    ])
    assert references.run_references(corpus)["references"]["content_rule"]["cut_f1"] == 0.0


def test_the_periodic_cutter_finds_the_period_of_a_rhythmic_editor(tmp_path):
    every7 = list(range(7, LENGTH, 7))
    corpus = write_known_corpus(tmp_path / "c", [(f"video {i}", s, every7, []) for i, s in
                                                 enumerate(("train", "train", "val", "test"))])
    rows = references.run_references(corpus)["references"]
    assert rows["periodic"]["period"] == 7 and rows["periodic"]["cut_f1"] == 1.0


def test_the_ceiling_row_scores_the_recorded_events_and_is_left_out_when_a_test_video_has_none(tmp_path):
    true = [30, 60, 90]
    corpus = write_known_corpus(tmp_path / "c", [("video a", "train", true, []), ("video b", "val", true, []),
                                                 ("video t", "test", true, [])])
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / schema.CEILING_FILE).write_text(json.dumps({"videos": {"video t": [30, 61]}}))
    row = references.run_references(corpus, raw)["references"]["ceiling"]
    assert (row["cut_precision"], row["cut_recall"]) == (1.0, pytest.approx(2 / 3))
    (raw / schema.CEILING_FILE).write_text(json.dumps({"videos": {"video a": [30]}}))
    assert "ceiling" not in references.run_references(corpus, raw)["references"]
