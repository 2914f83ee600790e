"""`trackfusion experiments`: the seeds' gain and the shuffle control from `dvc exp show --json -A`."""
from __future__ import annotations

import statistics

from trackfusion.experiment.dvc_experiments import collect, summarize


def _data(seed: int, control: str, base: float, multi: float) -> dict:
    """A run's params and its compare.json cut F1 table (roll-out 0.1 below teacher-forced)."""
    table = {"baseline": {"kind": "model", "cut_f1": base, "rollout_cut_f1": base - 0.1},
             "multimodal": {"kind": "model", "cut_f1": multi, "rollout_cut_f1": multi - 0.1},
             "content_rule": {"kind": "reference", "cut_f1": 0.85, "rollout_cut_f1": 0.85}}  # fmt: skip
    return {
        "params": {"params.yaml": {"data": {"seed": seed, "content_control": control, "fusion_type": "gated",
                                            "use_audio": True, "use_visual": True}}},
        "metrics": {"metrics/compare.json": {"data": {"cut_f1": table}}},
    }


def test_runs_scored_before_cut_events_are_left_out() -> None:
    old = _data(5, "none", 0.06, 0.3)
    old["metrics"]["metrics/compare.json"]["data"] = {"test": {"cut_f1": {"baseline": 0.06, "multimodal": 0.3}}}
    show = _exp_show()
    show[1]["experiments"].append({"name": "old", "revs": [{"rev": "f" * 40, "name": "old", "data": old}]})
    assert "old" not in {r["name"] for r in collect(show)}


def _exp_show() -> list:
    """The shape `dvc exp show --json -A` prints (dvc 3.x): commits, each with its experiments."""
    return [
        {"rev": "workspace", "name": None, "data": _data(0, "none", 0.1, 0.4), "experiments": None},
        {"rev": "a" * 40, "name": "main", "data": _data(0, "none", 0.1, 0.4), "experiments": [
            {"name": "s1", "revs": [{"rev": "b" * 40, "name": "s1", "data": _data(1, "none", 0.1, 0.3)}]},
            {"name": "s2", "revs": [{"rev": "c" * 40, "name": "s2", "data": _data(2, "none", 0.2, 0.3)}]},
            {"name": "c0", "revs": [{"rev": "d" * 40, "name": "c0", "data": _data(0, "shuffle", 0.1, 0.05)}]},
        ]},
        {"rev": "e" * 40, "name": None, "data": _data(0, "none", 0.5, 0.0), "experiments": None},  # older code
    ]


def test_collect_takes_the_experiments_and_the_commit_they_started_from() -> None:
    rows = collect(_exp_show())
    assert sorted(r["name"] for r in rows) == ["c0", "main", "s1", "s2"]  # no workspace, no commit without exps
    by_name = {r["name"]: r for r in rows}
    assert by_name["c0"]["content_control"] == "shuffle"
    assert abs(by_name["s2"]["difference"] - 0.1) < 1e-12
    assert abs(by_name["s2"]["multimodal_rollout"] - 0.2) < 1e-12 and by_name["s2"]["content_rule"] == 0.85


def test_summary_reports_mean_and_spread_and_the_control() -> None:
    text = summarize(collect(_exp_show()))
    diffs = [0.3, 0.2, 0.1]
    assert f"{statistics.fmean(diffs):+.3f} +- {statistics.stdev(diffs):.3f} (n=3" in text
    assert "-0.050 +- 0.000 (n=1" in text
    assert "vanishes" in text
    assert text.count("| gated |") == 4


def test_ablations_get_their_own_rows_and_stay_out_of_the_seeds_spread() -> None:
    show = _exp_show()
    concat = _data(0, "none", 0.1, 0.9)
    concat["params"]["params.yaml"]["data"]["fusion_type"] = "concat"
    show[1]["experiments"].append({"name": "cc", "revs": [{"rev": "f" * 40, "name": "cc", "data": concat}]})
    text = summarize(collect(show))
    assert "(n=3" in text  # the seeds of the base configuration only: main, s1, s2
    assert "| none | concat | True | True | 1 | 0.900 | +0.800 |" in text


def test_the_layout_and_the_selection_figures_are_summarised_where_the_runs_have_them() -> None:
    show = _exp_show()
    for i, (name, layout) in enumerate((("main", 0.5), ("s1", 0.6), ("c0", 0.1))):
        node = show[1] if name == "main" else next(e for e in show[1]["experiments"] if e["name"] == name)["revs"][0]
        node["data"]["metrics"]["metrics/compare.json"]["data"] |= {
            "layout": {"multimodal": {"layout_accuracy": layout, "switch_f1": {"V1": 0.9, "V2": layout + 0.3}},
                       "layout_rule": {"layout_accuracy": 0.65}},
            "selection": {"multimodal": {"kept_f1": (0.8, 0.7, 0.3)[i]}}}
    rows = {r["name"]: r for r in collect(show)}
    assert rows["s1"]["layout"] == 0.6 and rows["s1"]["selection"] == 0.7 and rows["s2"]["layout"] is None
    text = summarize(list(rows.values()))
    assert "| multimodal layout accuracy, roll-out | 0.550 +- 0.071 (n=2, min 0.500, max 0.600) | 0.100 +- 0.000 (n=1" in text
    assert "| layout rule (reference) | 0.650 +- 0.000 (n=2" in text
    assert "| selection model kept-frame F1 | 0.750 +- 0.071 (n=2" in text
    assert "| multimodal face-cam (V2) switch F1, roll-out | 0.850 +- 0.071 (n=2" in text  # V2's, not V1's
    assert "switch F1" not in summarize(collect(_exp_show()))  # no run has it: no row of n/a


def test_the_same_run_reached_from_two_commits_counts_once() -> None:
    show = _exp_show()
    older = {"rev": "9" * 40, "name": None, "data": _data(0, "none", 0.1, 0.4), "experiments": [
        {"name": "s1old", "revs": [{"rev": "8" * 40, "name": "s1old", "data": _data(1, "none", 0.1, 0.3)}]}]}
    rows = collect(show + [older])
    assert sorted(r["name"] for r in rows) == ["c0", "main", "s1", "s2"]
