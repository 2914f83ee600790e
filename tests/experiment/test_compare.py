"""The write-up's claim: read only beside the reference rows, and honest when a rule wins."""
from __future__ import annotations

from trackfusion.experiment.compare import (
    cut_table_markdown,
    intervals_markdown,
    per_video_markdown,
    layout_markdown,
    layout_rows,
    selection_markdown,
    selection_rows,
    split_figures,
    verdict,
)
from trackfusion.intervals import all_intervals


def _rows(multimodal: float, rule: float) -> dict:
    return {
        "periodic": {"kind": "reference", "cut_f1": 0.39, "rollout_cut_f1": 0.39},
        "content_rule": {"kind": "reference", "cut_f1": rule, "rollout_cut_f1": rule},
        "baseline": {"kind": "model", "cut_f1": 0.55, "rollout_cut_f1": 0.40},
        "multimodal": {"kind": "model", "cut_f1": multimodal, "rollout_cut_f1": multimodal - 0.01},
    }


def test_verdict_states_the_gain_against_every_reference() -> None:
    text = verdict(_rows(0.84, 0.86))[0]
    assert "**0.840** teacher-forced and **0.830** rolled out" in text
    assert "Against the content rule (0.860): multimodal -0.020, baseline -0.310" in text
    assert "beats the multimodal model" in text and "model's shortfall" in text


def test_verdict_does_not_blame_the_model_when_it_beats_the_rule() -> None:
    text = verdict(_rows(0.88, 0.86))[0]
    assert "multimodal +0.020" in text and "beats the multimodal model" not in text


def test_verdict_needs_both_models() -> None:
    assert verdict({"multimodal": {"cut_f1": 0.8}}) == []


def test_cut_table_lists_every_row_and_split_figures_skips_non_numbers() -> None:
    rows = {k: {**r, "cut_precision": 0.8, "cut_recall": 0.9, "pred_cuts": 10, "true_cuts": 9, "how": k}
            for k, r in _rows(0.84, 0.86).items()}  # fmt: skip
    lines = cut_table_markdown(rows)
    assert [line.split(" | ")[0] for line in lines[2:6]] == ["| periodic", "| content_rule", "| **baseline**",
                                                                "| **multimodal**"]  # fmt: skip
    assert "(open loop)" in lines[2] and "| 0.830 |" in lines[5] and "9 true cut events" in lines[-1]
    assert split_figures({"test": {"cut_f1": 0.5, "layout_accuracy": None, "kind": "x"}}) == {"cut_f1": 0.5}


def _selection(model: float, rule: float) -> dict:
    row = lambda f1, how="": {"kept_f1": f1, "precision": f1, "recall": f1, "boundary_f1": 0.5,  # noqa: E731
                              "duration_error_s": 0.2, "how": how}
    return {"videos": 6, "frames": 100, "selection": {
        "multimodal": row(model), "ceiling": row(0.9, "noiseless"), "keep_all": row(0.6, "all"),
        "ceiling_at_length": row(0.85, "noiseless, at the length"),
        "random": row(0.45, "random"), "loudness_rule": row(0.6, "loud"), "content_rule": row(rule, "rule")},
        "at_default_ratio": {"target_ratio": 0.4, "multimodal": row(model - 0.05), "keep_all": row(0.6)}}


def test_the_selection_table_reads_the_model_between_its_references() -> None:
    """Issue 22: the selection table opens results.md, references around the model, in reading order."""
    assert list(selection_rows(_selection(0.8, 0.7))) == ["keep_all", "random", "loudness_rule", "content_rule",
                                                          "multimodal", "ceiling_at_length", "ceiling"]
    lines = selection_markdown(_selection(0.8, 0.7))
    assert lines[0].startswith("## What the edit keeps") and "| **multimodal** | 0.800 |" in "\n".join(lines)
    text = "\n".join(lines)
    assert "+0.100 against the content rule (0.700)" in text and "-0.100 against the ceiling" in text
    assert "-0.050 against the noiseless editor asked for the same length (0.850)" in text
    assert "model's shortfall" not in text and "At the default ratio (0.4" in text


def test_the_selection_verdict_blames_the_model_when_a_rule_wins() -> None:
    assert "model's shortfall" in "\n".join(selection_markdown(_selection(0.7, 0.75)))


def test_the_layout_rows_carry_each_tracks_switch_f1_by_name_and_the_table_shows_it() -> None:
    """`dvc exp show` drops lists, so the switch F1 is also kept by track name (what `trackfusion experiments` reads)."""
    figures = {"layout_accuracy": 0.5, "per_track": [0.9, 0.6, 1.0, 1.0, 1.0],
               "per_track_switch_f1": [0.8, 0.7, None, 1.0, None, 0.5], "active_f1": 0.9, "asset_accuracy": 0.9,
               "scale_mae": 1.0, "position_mae": 2.0, "crop_mae": 0.0}
    rows = layout_rows({"layout": {"hold": {**figures, "how": "held"}}}, {"multimodal": {"layout": figures}})
    assert rows["multimodal"]["switch_f1"] == {"V1": 0.8, "V2": 0.7, "V3": None, "V4": 1.0, "V5": None}
    table = "\n".join(layout_markdown(rows))
    assert "| V1 / V2 / V3 / V4 / V5 switch F1 |" in table and "| 0.800 / 0.700 / - / 1.000 / - |" in table


def test_the_markdown_reads_the_model_against_each_reference():
    ref = {f"v{i}": {"same": 250.0, "frames": 500.0} for i in range(4)}
    model = {v: {"same": 300.0, "frames": 500.0} for v in ref}
    table = all_intervals({"layout": {"multimodal": model, "layout_rule": ref}}, "multimodal")
    text = "\n".join(intervals_markdown(table, "multimodal"))
    assert "| layout | layout_accuracy | 4 | 0.600 [0.600, 0.600] | layout_rule | 0.500 [0.500, 0.500] | " \
           "+0.100 [+0.100, +0.100] | 1.00 |" in text


def test_the_per_video_tables_put_the_model_first_and_weigh_each_video():
    counts = {"layout": {"layout_rule": {"a": {"same": 90, "frames": 100}},
                         "multimodal": {"a": {"same": 20, "frames": 100}}}}
    text = "\n".join(per_video_markdown(counts, "multimodal"))
    assert "| video | frames | **multimodal** | layout_rule |" in text and "| a | 100 | 0.200 | 0.900 |" in text
    assert per_video_markdown({"layout": {"layout_rule": counts["layout"]["layout_rule"]}}, "multimodal") == []
