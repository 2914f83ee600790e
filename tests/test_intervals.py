"""Per-video counts and the paired bootstrap (trackfusion.intervals): how far the test videos tell rows apart."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackfusion import cuts, intervals, selection
from trackfusion.layouts import LayoutScore
from tests.strategies.tracks import random_track


@st.composite
def f1_counts(draw: st.DrawFn) -> dict[str, dict[str, float]]:
    """Per-video F1 counts of 1-12 videos."""
    return {f"v{i}": {k: float(draw(st.integers(0, 50))) for k in ("tp", "fp", "fn")}
            for i in range(draw(st.integers(1, 12)))}


@settings(max_examples=30, deadline=None)
@given(f1_counts())
def test_a_row_against_itself_differs_by_exactly_zero_in_every_draw(counts):
    """The draws are paired: the same resampled videos for every row, so identical rows never differ."""
    out = intervals.paired_bootstrap("cuts", {"multimodal": counts, "copy": {v: dict(c) for v, c in counts.items()}},
                                     "multimodal", draws=500)
    d = out["model_less"]["copy"]
    assert (d["value"], d["low"], d["high"], d["p_at_least"]) == (0.0, 0.0, 0.0, 1.0)


def test_a_model_better_on_every_video_is_surely_better_and_a_worse_one_surely_worse():
    rng = np.random.default_rng(0)
    ref = {f"v{i}": {"same": float(rng.integers(100, 400)), "frames": 500.0} for i in range(10)}
    better = {v: {"same": c["same"] + 30, "frames": 500.0} for v, c in ref.items()}
    out = intervals.paired_bootstrap("layout", {"multimodal": better, "rule": ref}, "multimodal", draws=2000)
    d = out["model_less"]["rule"]
    assert d["low"] > 0 and d["p_at_least"] == 1.0
    assert d["value"] == pytest.approx(30 / 500)
    out = intervals.paired_bootstrap("layout", {"multimodal": ref, "rule": better}, "multimodal", draws=2000)
    assert out["model_less"]["rule"]["high"] < 0 and out["model_less"]["rule"]["p_at_least"] == 0.0


def test_a_gap_one_video_makes_is_not_sure_and_the_interval_holds_the_pooled_figure():
    ref = {f"v{i}": {"same": 250.0, "frames": 500.0} for i in range(10)}
    model = {**ref, "v3": {"same": 450.0, "frames": 500.0}}  # better on one video only
    out = intervals.paired_bootstrap("layout", {"multimodal": model, "rule": ref}, "multimodal", draws=4000)
    d = out["model_less"]["rule"]
    assert d["value"] == pytest.approx(0.04)
    assert d["low"] == 0.0 < d["value"] < d["high"]  # a draw without v3 shows no gap
    row = out["rows"]["multimodal"]
    assert row["low"] <= row["value"] <= row["high"] and row["value"] == pytest.approx(2700 / 5000)


def test_more_videos_narrow_the_interval_and_a_seed_gives_the_same_draws():
    rng = np.random.default_rng(1)
    ten = {f"v{i}": {"tp": float(rng.integers(0, 40)), "fp": float(rng.integers(0, 20)),
                     "fn": float(rng.integers(0, 20))} for i in range(10)}
    forty = {f"{v}_{k}": c for k in range(4) for v, c in ten.items()}
    width = {}
    for name, rows in (("ten", ten), ("forty", forty)):
        row = intervals.paired_bootstrap("selection", {"multimodal": rows}, "multimodal", draws=3000)["rows"]
        width[name] = row["multimodal"]["high"] - row["multimodal"]["low"]
    assert width["forty"] < 0.7 * width["ten"]
    assert intervals.paired_bootstrap("cuts", {"multimodal": ten}, "multimodal", draws=300, seed=5) == \
        intervals.paired_bootstrap("cuts", {"multimodal": ten}, "multimodal", draws=300, seed=5)


def test_a_video_not_every_row_scored_is_left_out_with_a_warning(caplog):
    a = {"v0": {"same": 1.0, "frames": 2.0}, "v1": {"same": 2.0, "frames": 2.0}}
    b = {"v1": {"same": 0.0, "frames": 2.0}}
    with caplog.at_level(logging.WARNING, logger="trackfusion.intervals"):
        out = intervals.paired_bootstrap("layout", {"multimodal": a, "hold": b}, "multimodal", draws=100)
    assert out["videos"] == 1 and out["rows"]["multimodal"]["value"] == 1.0
    assert "v0" in caplog.text


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_every_scorers_per_video_counts_pool_to_its_figure(seed, videos):
    """The intervals are read on the tables' own figures: each scorer's per-video counts sum to them."""
    rng = np.random.default_rng(seed)
    layout, cut, kept = LayoutScore(), cuts.CutScore(), selection.SelectionScore()
    for i in range(videos):
        T = int(rng.integers(2, 60))
        true, pred = random_track(rng, T, mean_run=6.0), random_track(rng, T, mean_run=6.0)
        layout.add(pred, true, video_id=f"v{i}")
        cut.add(cuts.video_cut_events(pred), cuts.video_cut_events(true), T, f"v{i}")
        kept.add(rng.random(T) < 0.5, rng.random(T) < 0.4, 10.0, f"v{i}")
    for table, score, figure in (("layout", layout, layout.figures()["layout_accuracy"]),
                                 ("cuts", cut, cut.f1), ("selection", kept, kept.kept_f1)):
        out = intervals.paired_bootstrap(table, {"multimodal": score.per_video}, "multimodal", draws=50)
        assert out["videos"] == videos
        assert out["rows"]["multimodal"]["value"] == pytest.approx(figure), table


def test_counts_files_round_trip_merge_and_refuse_an_unknown_table(tmp_path: Path, caplog):
    one = {"v0": {"tp": 1, "fp": 0, "fn": 2}}
    intervals.write_counts(tmp_path / "a.json", {"cuts": {"multimodal": one}})
    intervals.write_counts(tmp_path / "b.json", {"cuts": {"ceiling": one}, "layout": {"hold": {"v0": {"same": 1,
                                                                                                     "frames": 1}}}})
    with caplog.at_level(logging.WARNING):
        merged = intervals.read_counts([tmp_path / "a.json", tmp_path / "b.json", tmp_path / "missing.json"])
    assert set(merged["cuts"]) == {"multimodal", "ceiling"} and set(merged["layout"]) == {"hold"}
    assert "missing.json" in caplog.text
    with pytest.raises(ValueError, match="unknown counts table"):
        intervals.write_counts(tmp_path / "c.json", {"cut": {}})
    assert not (tmp_path / "c.json").exists()
    assert json.loads((tmp_path / "a.json").read_text())["cuts"]["multimodal"]["v0"]["fn"] == 2


def test_a_rows_counts_leave_its_figures_and_random_draws_average_per_video():
    rows = {"rule": {"kept_f1": 0.5, intervals.PER_VIDEO: {"v0": {"tp": 1}}}, "keep_all": {"kept_f1": 0.3}}
    assert intervals.pop_video_counts(rows) == {"rule": {"v0": {"tp": 1}}}
    assert rows == {"rule": {"kept_f1": 0.5}, "keep_all": {"kept_f1": 0.3}}
    draws = [{"v0": {"tp": 1, "fp": 3}}, {"v0": {"tp": 3, "fp": 5}}]
    assert intervals.mean_counts(draws) == {"v0": {"tp": 2.0, "fp": 4.0}}


def test_each_videos_own_figure_and_its_weight_show_where_a_pooled_gap_comes_from():
    rule = {"long": {"same": 900.0, "frames": 1000.0}, "short": {"same": 50.0, "frames": 100.0}}
    model = {"long": {"same": 200.0, "frames": 1000.0}, "short": {"same": 60.0, "frames": 100.0}}
    out = intervals.per_video_figures("layout", {"multimodal": model, "rule": rule})
    assert out["long"] == {"weight": 1000.0, "figures": {"multimodal": 0.2, "rule": 0.9}}
    assert out["short"]["figures"] == {"multimodal": pytest.approx(0.6), "rule": pytest.approx(0.5)}
    f1 = intervals.per_video_figures("cuts", {"multimodal": {"v": {"tp": 3.0, "fp": 1.0, "fn": 1.0}}})
    assert f1["v"] == {"weight": 4.0, "figures": {"multimodal": pytest.approx(0.75)}}  # 4 true cuts
