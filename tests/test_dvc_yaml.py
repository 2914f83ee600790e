"""dvc.yaml itself: every stage lists the code it runs, so an edit re-runs what it changes."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "trackfusion"


def _imports(path: Path) -> set[str]:
    """trackfusion modules `path` imports, at any depth of the file (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "trackfusion":
                found |= {f"trackfusion.{a.name}" for a in node.names}
            elif node.module.startswith("trackfusion."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("trackfusion.")}
    return {m for m in found if (PACKAGE / f"{m.split('.', 1)[1]}.py").exists()}


def code_of(script: Path) -> set[str]:
    """The stage script and every package module it runs, transitively, as repository paths."""
    seen: set[str] = set()
    todo = list(_imports(script))
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += _imports(PACKAGE / f"{module.split('.', 1)[1]}.py")
    return {str(script.relative_to(ROOT))} | {f"src/trackfusion/{m.split('.', 1)[1]}.py" for m in seen}


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
