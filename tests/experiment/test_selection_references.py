"""The selection references (issue 22): each on a tiny corpus whose answer is known, scored as the model is."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trackfusion import cuts, intervals, schema, selection
from trackfusion.data.corpus import Corpus, CorpusWriter
from trackfusion.experiment.selection import references

FPS = 10


def _corpus(path: Path, rng: np.random.Generator, *, motion_keeps: bool = False) -> tuple[Path, dict[str, np.ndarray]]:
    """Eight 60 s videos; the editor keeps three 4 s stretches that are loud (or, `motion_keeps`, that move
    while everything is equally loud)."""
    splits = ["train"] * 5 + ["val", "test", "test"]
    truth = {}
    with CorpusWriter(path, fps=FPS) as w:
        for i, split in enumerate(splits):
            n = 600
            kept = np.zeros(n, bool)
            for a in (60 + 180 * k + int(rng.integers(0, 60)) for k in range(3)):
                kept[a : a + 40] = True
            audio = np.zeros((n, schema.AUDIO_WIDTH), np.float32)
            visual = np.zeros((n, schema.VISUAL_SCALAR_WIDTH), np.float32)
            audio[:, 0] = 0.3 if motion_keeps else np.where(kept, 0.4, 0.01) + rng.uniform(0, 0.005, n)
            visual[:, 1] = np.where(kept, 0.8, 0.1) if motion_keeps else rng.uniform(0.05, 0.2, n)
            vid = f"video {i}"
            truth[vid] = kept
            w.append(vid, split, 0.0, audio=audio, visual=visual, clip=np.zeros((n, schema.CLIP_DIM), np.float16),
                     track=np.zeros((n, schema.TRACK_WIDTH), np.float32), mask=np.ones((n, 3), bool),
                     times=np.arange(n)[:, None] / FPS, kept=kept[:, None])
    return path, truth


DECODING = selection.SelectionDecoding(min_clip_s=2.0, min_gap_s=1.0)


def test_the_loudness_rule_finds_an_editor_who_keeps_what_is_loud(tmp_path: Path) -> None:
    corpus, _ = _corpus(tmp_path / "c", np.random.default_rng(0))
    rows, ratio_rows = references(corpus, None, DECODING, ratio=0.2)
    assert rows["loudness_rule"]["kept_f1"] == pytest.approx(1.0)
    assert rows["loudness_rule"]["boundary_f1"] == pytest.approx(1.0)
    assert rows["content_rule"]["kept_f1"] >= 0.98  # its smoothing (>= 1 s) may move an edge by a frame
    share = 120 / 600
    assert rows["keep_all"]["precision"] == pytest.approx(share) and rows["keep_all"]["recall"] == 1.0
    assert rows["random"]["kept_f1"] < 0.5 and rows["random"]["train_keep_rate"] == pytest.approx(share)
    assert "ceiling" not in rows  # a user's corpus has no ceiling file
    assert ratio_rows["loudness_rule"]["kept_f1"] == pytest.approx(1.0)  # 0.2 is the true share here
    # each test video's counts ride along for compare's intervals, at the true length only
    test_videos = Corpus(corpus).split_videos("test")
    for name in ("keep_all", "random", "loudness_rule", "content_rule"):
        per = rows[name][intervals.PER_VIDEO]
        assert set(per) == {v.video_id for v in test_videos}, name
        if name != "random":  # a mean of draws' counts
            tp, fp, fn = (sum(c[k] for c in per.values()) for k in ("tp", "fp", "fn"))
            assert cuts.f1_score(tp, fp, fn) == pytest.approx(rows[name]["kept_f1"]), name


def test_only_the_content_rule_sees_an_editor_who_keeps_what_moves(tmp_path: Path) -> None:
    corpus, _ = _corpus(tmp_path / "c", np.random.default_rng(1), motion_keeps=True)
    rows, _ = references(corpus, None, DECODING, ratio=0.2)
    assert rows["content_rule"]["kept_f1"] == pytest.approx(1.0) and rows["content_rule"]["motion"] > 0
    assert rows["loudness_rule"]["kept_f1"] < 0.6  # everything is equally loud: its order is arbitrary


def test_the_ceiling_row_scores_the_recorded_selection(tmp_path: Path) -> None:
    corpus, truth = _corpus(tmp_path / "c", np.random.default_rng(2))
    raw = tmp_path / "raw"
    raw.mkdir()
    half = {v: selection.segments(k)[:2].tolist() for v, k in truth.items()}  # two of the three stretches
    (raw / schema.CEILING_FILE).write_text(json.dumps({"selection": half}))
    rows, _ = references(corpus, raw, DECODING, ratio=0.2)
    assert rows["ceiling"]["precision"] == 1.0 and rows["ceiling"]["recall"] == pytest.approx(2 / 3)
    assert "ceiling_at_length" not in rows  # a corpus generated before it was recorded
    whole = {v: selection.segments(k).tolist() for v, k in truth.items()}
    (raw / schema.CEILING_FILE).write_text(json.dumps({"selection": half, "selection_at_length": whole}))
    rows, _ = references(corpus, raw, DECODING, ratio=0.2)
    assert rows["ceiling_at_length"]["kept_f1"] == 1.0 and rows["ceiling"]["recall"] == pytest.approx(2 / 3)
