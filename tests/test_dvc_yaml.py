"""dvc.yaml itself: every stage lists the code it runs, so an edit re-runs what it changes."""
from __future__ import annotations

import ast
import re

import pytest
import yaml

from tests.repository import REPO as ROOT
from tests.repository import code_of, module_path

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_stage_depends_on_all_the_code_it_runs(name: str) -> None:
    """Issue 13: predict missed 15 modules, so editing one re-ran nothing and left stale edits."""
    stage = STAGES[name]
    script = re.search(r"python (stages/\S+\.py)", stage["cmd"])
    assert script, f"{name}: the command does not run a stage script"
    deps = {d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])}
    package_deps = "src/trackfusion" in deps or "src/trackfusion/" in deps
    missing = set() if package_deps else code_of(ROOT / script.group(1)) - deps
    assert not missing, f"dvc.yaml stage {name} does not list {sorted(missing)} in its deps"


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "stages").glob("*.py") if not p.name.startswith("_")))
def test_stage_scripts_run_the_src_beside_them(tmp_path: Path, script: str) -> None:
    """Issue 12: with the editable install a queued experiment ran the workspace's src/,
    not the copy DVC had hashed for it under .dvc/tmp/exps/."""
    import shutil
    import subprocess
    import sys

    shutil.copytree(ROOT / "stages", tmp_path / "stages")
    (tmp_path / "src" / "trackfusion").mkdir(parents=True)
    (tmp_path / "src" / "trackfusion" / "__init__.py").write_text('raise SystemExit("the copy\'s own src")\n')
    done = subprocess.run([sys.executable, str(tmp_path / "stages" / script), "--help"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)  # fmt: skip
    assert done.returncode != 0 and "the copy's own src" in done.stderr


@pytest.mark.parametrize("debug", [False, True])
def test_an_expected_condition_ends_a_stage_in_one_line(tmp_path: Path, debug: bool) -> None:
    """Issue 12: a missing input, 0 videos or an unreadable checkpoint ended in a traceback."""
    import os
    import subprocess
    import sys

    (tmp_path / "raw").mkdir()
    params = (ROOT / "params.yaml").read_text().replace("raw_dir: data/synthetic", f"raw_dir: {tmp_path / 'raw'}")
    (tmp_path / "params.yaml").write_text(params)
    env = {**os.environ, "TRACKFUSION_DEBUG": "1"} if debug else {k: v for k, v in os.environ.items()
                                                                  if k != "TRACKFUSION_DEBUG"}  # fmt: skip
    done = subprocess.run([sys.executable, str(ROOT / "stages" / "validate.py"), "--metrics", "m.json", "--report",
                           "r.md"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 1 and "sequences.npz: track sequences not found" in done.stderr
    if debug:
        assert "Traceback" in done.stderr
    else:
        assert "Traceback" not in done.stderr and done.stderr.strip().startswith("error: ")
        assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "stages").glob("*.py") if not p.name.startswith("_")))
def test_stage_paths_live_only_in_dvc_yaml(script: str) -> None:
    """Issue 13: stage paths lived in dvc.yaml, argparse defaults and literals in three scripts."""
    tree = ast.parse((ROOT / "stages" / script).read_text(encoding="utf-8"))
    literals = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    paths = [v for v in literals if re.match(r"(data|models|metrics|plots|checkpoints)/", v)]
    assert not paths, f"stages/{script} names paths of its own: {paths}"
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "add_argument"):
        default = next((k.value for k in call.keywords if k.arg == "default"), None)
        flag = call.args[0].value if call.args and isinstance(call.args[0], ast.Constant) else "?"
        assert default is None or flag == "--params", f"stages/{script}: {flag} has a default of its own"
