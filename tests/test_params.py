"""params.yaml is validated before any work: one clear error naming the key and what it may be."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trackfusion.params import FUSION_TYPES, Params, ParamsError, load_params, params_from_dict

REPO = Path(__file__).resolve().parents[1]


def test_the_committed_params_yaml_is_valid_and_complete() -> None:
    p = load_params(REPO / "params.yaml")
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert p.fusion_type in FUSION_TYPES
    # every top-level knob of the dataclasses is spelled out in the file, so `dvc exp run -S` accepts it
    assert set(p.to_dict()) == set(raw)
    for section, values in p.to_dict().items():
        if isinstance(values, dict):
            assert set(values) == set(raw[section]), section


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"fusion_type": "sum"}, ["fusion_type", "concat", "add", "gated", "attention"]),
        ({"content_control": "random"}, ["content_control", "none", "shuffle"]),
        ({"model": {"cut_context": "track"}}, ["model.cut_context", "content", "all"]),
        ({"predict": {"edit_rate": 10}}, ["predict.edit_rate", "editing rate", "30"]),
        ({"predict": {"edit_rate": 25}}, ["predict.edit_rate", "multiple of data.fps"]),
        ({"train": {"lr": float("inf")}}, ["train.lr", "finite"]),
        ({"loss": {"active": float("nan")}}, ["loss.active", "finite"]),
        ({"loss": {"scale": -1.0}}, ["loss.scale", ">= 0"]),
        ({"train": {"stride": 200}, "model": {"seq_len": 128}}, ["train.stride", "model.seq_len"]),
        ({"model": {"d_model": 30, "nhead": 4}}, ["model.d_model", "divisible", "model.nhead"]),
        ({"model": {"d_model": -8}}, ["model.d_model", "> 0"]),
        ({"train": {"batch_size": 0}}, ["train.batch_size", "> 0"]),
        ({"train": {"epochs": "ten"}}, ["train.epochs", "int"]),
        ({"model": {"d_modl": 64}}, ["model.d_modl", "allowed keys", "d_model"]),
        ({"fusion": "gated"}, ["'fusion'", "allowed keys", "fusion_type"]),
        ({"train": {"device": "tpu"}}, ["train.device", "auto", "cpu", "cuda"]),
        ({"data": {"val_fraction": 0.6, "test_fraction": 0.5}}, ["val_fraction", "test_fraction"]),
        ({"use_audio": "yes"}, ["use_audio", "bool"]),
        ({"model": {"visual_inputs": ["saliency"]}}, ["model.visual_inputs", "'saliency'", "saliency_x"]),
        ({"model": {"toggle_tracks": [1, 1]}}, ["model.toggle_tracks", "distinct", "0..19", "[1, 1]"]),
        ({"model": {"toggle_tracks": [20]}}, ["model.toggle_tracks", "0..19", "[]: none"]),
        ({"predict": {"toggle_threshold": 1.0}}, ["predict.toggle_threshold", "0..1"]),
    ],
)
def test_invalid_params_name_the_key_and_the_allowed_values(raw: dict, words: list[str]) -> None:
    with pytest.raises(ParamsError) as err:
        params_from_dict(raw)
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_a_stage_refuses_bad_params_before_any_work(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["fusion_type"] = "sum"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    proc = subprocess.run([sys.executable, str(REPO / "stages" / "train.py"), "--kind", "multimodal", "--corpus",
                           "data/normalized", "--live-dir", "plots/multimodal", "--metrics", "metrics/multimodal.json",
                           "--model", "models/multimodal.pt", "--checkpoints", "checkpoints/multimodal"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode != 0
    assert "fusion_type" in proc.stderr and "attention" in proc.stderr
    assert not (tmp_path / "metrics").exists() and not (tmp_path / "models").exists()


def test_defaults_are_the_committed_params_yaml() -> None:
    """Issue 13: Params() said epochs 10, batch_size 32 while params.yaml said 30 and 16,
    so deleting a key silently chose a setting nobody had measured."""
    committed = params_from_dict(yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text()))
    assert committed == Params()
