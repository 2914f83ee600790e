"""End to end: the whole DVC pipeline in a temporary copy of the repository.

Runs `dvc repro` on a tiny params override (a few short videos, one epoch), checks
every output exists and is well-formed, that a second `dvc repro` runs nothing, and
that `dvc exp run -S fusion_type=add` re-runs only the multimodal training and what
follows it (predict, compare).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.repository import REPO, code_of, copy_repository, run, stages_run

pytestmark = pytest.mark.slow

TINY = {
    "synthetic": {"num_videos": 6, "min_duration_s": 20, "max_duration_s": 30},
    "model": {"d_model": 16, "nhead": 2, "num_encoder_layers": 1, "dim_feedforward": 32, "seq_len": 32},
    "train": {"epochs": 1, "batch_size": 8, "stride": 32},
    "predict": {"context": 8},
    "select": {"epochs": 2},
}


STAGES = ("extract", "ingest", "generate", "validate", "align", "normalize", "train_baseline", "train_multimodal",
          "predict", "references", "select", "compare")


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_repository(tmp_path_factory.mktemp("repo"), TINY)


def _keys(obj: object) -> list[str]:
    """Every key of a nested JSON object."""
    if isinstance(obj, dict):
        return [k for key, value in obj.items() for k in (key, *_keys(value))]
    return [k for v in obj for k in _keys(v)] if isinstance(obj, list) else []


def test_dvc_repro_end_to_end(repo_copy: Path) -> None:
    out = run(["dvc", "repro"], repo_copy)
    assert set(STAGES) == stages_run(out)
    metrics = {name: json.loads((repo_copy / "metrics" / f"{name}.json").read_text()) for name in
               ("validation", "alignment", "baseline", "multimodal", "predict", "references", "selection",
                "compare")}  # fmt: skip
    assert metrics["alignment"]["videos_kept"] == metrics["validation"]["summary"]["videos_ok"] > 0
    compare = metrics["compare"]
    cut = compare["test"]["cut_f1"]
    # the comparison carries each stage's own figures, not figures of its own making
    for kind in ("baseline", "multimodal"):
        assert cut[kind] == metrics[kind]["test"]["cut_f1"]
        assert compare["cut_f1"][kind]["rollout_cut_f1"] == metrics["predict"][kind]["rollout"]["cut_f1"]
    for name, row in metrics["references"]["references"].items():
        assert compare["cut_f1"][name]["cut_f1"] == row["cut_f1"], name
    assert cut["difference"] == pytest.approx(cut["multimodal"] - cut["baseline"], abs=1e-5)
    for name in metrics:  # figures, not timings: those go to runs/
        assert not {"wall_time_s", "frames_per_s", "peak_memory_mb", "seconds"} & set(_keys(metrics[name])), name
    assert (repo_copy / "runs" / "train_multimodal.json").is_file() and (repo_copy / "runs" / "results.md").is_file()
    # every model figure is read beside the references, scored on the same test videos
    rows = compare["cut_f1"]
    assert set(rows) == {"never", "random", "periodic", "content_rule", "ceiling", "baseline", "multimodal"}
    assert len({r["true_cuts"] for r in rows.values()}) == 1 and rows["never"]["cut_f1"] == 0.0
    results = (repo_copy / "plots" / "results.md").read_text()
    assert "cut_f1" in results and "baseline" in results
    # issue 22: the selection table, every row from the select stage, at the top of the write-up
    kept = {name: row["kept_f1"] for name, row in compare["selection"].items()}
    assert set(kept) == {"keep_all", "random", "loudness_rule", "content_rule", "multimodal", "ceiling_at_length",
                         "ceiling"}
    assert kept == {name: row["kept_f1"] for name, row in metrics["selection"]["selection"].items()}
    assert results.index("## What the edit keeps") < results.index("## Cut F1")
    # how sure: each interval is read on its table's own figure, over the same test videos
    iv = compare["intervals"]
    assert set(iv) == {"selection", "layout", "cuts"} and "## How sure" in results
    for name, row in compare["selection"].items():
        if name != "random":  # a mean of draws' figures, its interval on the draws' mean counts
            assert iv["selection"]["rows"][name]["value"] == pytest.approx(row["kept_f1"], abs=1e-5), name
    for name, row in compare["layout"].items():
        if name in iv["layout"]["rows"]:
            assert iv["layout"]["rows"][name]["value"] == pytest.approx(row["layout_accuracy"], abs=1e-5), name
    assert set(iv["layout"]["model_less"]) >= {"hold", "layout_rule", "layout_ceiling", "baseline"}
    assert iv["cuts"]["rows"]["multimodal"]["value"] == pytest.approx(rows["multimodal"]["rollout_cut_f1"], abs=1e-5)
    assert iv["cuts"]["videos"] == iv["layout"]["videos"] == metrics["predict"]["multimodal"]["videos"]
    assert (repo_copy / "models" / "selection.pt").is_file()
    asked, trained = yaml.safe_load((repo_copy / "params.yaml").read_text())["select"], metrics["selection"]["train"]
    assert (trained["epochs"], trained["ema"]) == (asked["epochs"], asked["ema"]) == (TINY["select"]["epochs"], 0.98)
    for png in ("curves.png", "components.png", "timeline.png"):
        assert (repo_copy / "plots" / "compare" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for model in ("baseline", "multimodal"):
        assert (repo_copy / "plots" / model / "plots" / "metrics" / "val" / "cut_f1.tsv").exists()
    predict = json.loads((repo_copy / "metrics" / "predict.json").read_text())
    assert 0 <= predict["multimodal"]["rollout"]["cut_f1"] <= 1
    otios = sorted((repo_copy / "data" / "predictions").glob("*.otio"))
    assert len(otios) == predict["multimodal"]["videos"] >= 1
    run(["otiocat", str(otios[0])], repo_copy)  # OpenTimelineIO's own tool reads the predicted edit back

    again = run(["dvc", "repro"], repo_copy)
    assert stages_run(again) == set(), again

    # issue 13: an edit to any module predict runs makes `dvc repro` re-run predict (deps cannot go stale)
    for module in sorted(code_of(REPO / "stages" / "predict.py")):  # the copy holds the same files
        path = repo_copy / module
        original = path.read_bytes()
        path.write_bytes(original + b"\n# an edit\n")
        try:
            dry = run(["dvc", "repro", "--dry", "predict"], repo_copy)
        finally:
            path.write_bytes(original)
        assert "predict" in stages_run(dry), module

    run(["git", "add", "-A"], repo_copy)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "repro"], repo_copy)
    exp = run(["dvc", "exp", "run", "-S", "fusion_type=add"], repo_copy)
    ran = stages_run(exp)
    assert ran == {"train_multimodal", "predict", "compare"}, ran
    exp = run(["dvc", "exp", "run", "select", "-S", "use_visual=false"], repo_copy)  # an ablation of selection alone
    assert stages_run(exp) == {"select"}, exp
