"""The console script for people (issue 25): it runs outside a checkout, and every expected condition ends
in one line, ``error: <file>: <what, and the fix>``, exit status 1 (params: 2), the traceback only under
TRACKFUSION_DEBUG=1."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _trackfusion(args: list[str], cwd: Path, debug: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRACKFUSION_DEBUG"}
    if debug:
        env["TRACKFUSION_DEBUG"] = "1"
    return subprocess.run([sys.executable, "-m", "trackfusion.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_command_outside_a_checkout_runs_on_the_defaults_and_says_so(tmp_path: Path) -> None:
    done = _trackfusion(["generate", "--out", "corpus"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no params.yaml in" in done.stderr and "using the defaults" in done.stderr
    assert (tmp_path / "corpus" / "sequences.npz").is_file()


def _not_a_model(tmp: Path) -> list[str]:
    (tmp / "model.pt").write_bytes(b"these bytes are not a model")
    (tmp / "feats").mkdir()
    return ["edit", "rec", "--features", "feats", "--out", "e.xml", "--model", "model.pt", "--keep-all"]


CASES = {
    "edit: no feature tables": (lambda tmp: ["edit", "nobody", "--features", ".", "--out", "e.xml"],
                                "no feature tables for 'nobody'"),
    "edit: no features folder": (lambda tmp: ["edit", "nobody", "--out", "e.xml"], "give --features"),
    "edit: a bad target": (lambda tmp: ["edit", "rec", "--features", ".", "--out", "e.xml", "--target", "soon"],
                           "--target 'soon': give a length"),
    "edit: a missing video": (lambda tmp: ["edit", "clip.mp4", "--out", "e.xml"], "clip.mp4"),
    "edit: a render without the video": (lambda tmp: ["edit", "rec", "--features", ".", "--out", "e.xml", "--render",
                                                      "p.mp4"], "--render needs the recording's video file"),
    "ingest: no timelines folder": (lambda tmp: ["ingest", "--timelines", "none", "--features", "none", "--out",
                                                 "raw"], "none"),
    "experiments: no dvc output file": (lambda tmp: ["experiments", "--json", "missing.json"], "missing.json"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_expected_failure_is_one_error_line(tmp_path: Path, case: str) -> None:
    args, message = CASES[case]
    done = _trackfusion(args(tmp_path), tmp_path)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ") or "ERROR" in line]
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "e.xml").exists()


def test_a_file_that_is_not_a_model_says_so_in_plain_words(tmp_path: Path) -> None:
    from trackfusion.data.synthetic import generate_corpus
    from trackfusion.params import SyntheticParams

    summary = generate_corpus(tmp_path / "raw", SyntheticParams(num_videos=1, min_duration_s=20, max_duration_s=20))
    (tmp_path / "model.pt").write_bytes(b"these bytes are not a model")
    args = ["edit", summary["video_ids"][0], "--features", str(tmp_path / "raw" / "features"), "--out", "e.xml",
            "--model", "model.pt", "--keep-all", "--corpus", str(tmp_path)]
    # the corpus' statistics are read first: give them, so the model file is what fails
    from tests.strategies.corpus import write_corpus

    write_corpus(tmp_path / "norm", [10], ["train"])
    args[args.index("--corpus") + 1] = str(tmp_path / "norm")
    done = _trackfusion(args, tmp_path)
    assert done.returncode == 1 and "model.pt: not a trackfusion model file" in done.stderr, done.stderr
    assert "Please file an issue" not in done.stderr and "Traceback" not in done.stderr
    debug = _trackfusion(args, tmp_path, debug=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_extract_without_clip_weights_is_one_line_and_edit_takes_no_clip(tmp_path: Path) -> None:
    """`extract` without the CLIP weights printed a 64-line traceback; `edit` had no --no-clip."""
    pytest.importorskip("av", reason="the [extract] extra")
    from tests.strategies.media import make_known_recording

    video = make_known_recording(tmp_path / "take.mp4")
    (tmp_path / "params.yaml").write_text(f"extract:\n  clip_model: {tmp_path / 'no weights here'}\n")
    done = _trackfusion(["extract", str(video), "--out", "raw"], tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "no weights here" in errors[0], done.stderr
    done = _trackfusion(["edit", str(video), "--out", "e.xml", "--no-clip"], tmp_path)
    # past extraction (no CLIP asked for): what stops it now is the missing training corpus, in one line
    assert done.returncode == 1 and "normalization.json" in done.stderr and "Traceback" not in done.stderr, \
        done.stderr
