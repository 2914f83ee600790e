"""A temporary copy of the repository for end-to-end `dvc repro` tests, and running commands in it."""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "trackfusion"


def run(cmd: list[str], cwd: Path, timeout: int = 900) -> str:
    """Run `cmd` with this interpreter's scripts (dvc, trackfusion) first on PATH; its output, or a failed assert."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def copy_repository(dst: Path, overrides: dict[str, Any]) -> Path:
    """The tracked and untracked-but-not-ignored files (no data, models or lock) in a new git
    repository at `dst`, with `overrides` merged into params.yaml (a section's keys, or a top-level key)."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file() and not rel.startswith(("data/", "models/")):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    params = yaml.safe_load((dst / "params.yaml").read_text())
    for key, values in overrides.items():
        if isinstance(values, dict):
            params[key].update(values)
        else:
            params[key] = values
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (dst / "dvc.lock").unlink(missing_ok=True)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):  # fmt: skip
        run(cmd, dst)
    return dst


# --- the code a stage runs -------------------------------------------------------------
def module_path(module: str) -> Path | None:
    """The file of a trackfusion module (``trackfusion.learn.model`` -> learn/model.py), or None."""
    parts = module.split(".")[1:]
    if not parts:
        return PACKAGE / "__init__.py"
    for candidate in (PACKAGE.joinpath(*parts).with_suffix(".py"), PACKAGE.joinpath(*parts, "__init__.py")):
        if candidate.exists():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """trackfusion modules `path` imports, at any depth of the file (function-level imports
    too), with the packages whose ``__init__`` each import runs."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "trackfusion":
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # `from trackfusion.io import features`
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("trackfusion.")}
    parents = {".".join(m.split(".")[:i]) for m in found for i in range(2, m.count(".") + 1)}
    return {m for m in found | parents if module_path(m) is not None}


def code_of(script: Path) -> set[str]:
    """The stage script and every package module it runs, transitively, as repository paths."""
    seen: set[str] = set()
    todo = list(_imports(script))
    stage = "import _stage" in script.read_text(encoding="utf-8")
    if stage:  # what every stage script runs first, and what that imports
        todo += _imports(REPO / "stages" / "_stage.py")
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += _imports(module_path(module))
    seen |= {"trackfusion"} if seen else set()  # the package's own __init__ runs first
    code = {str(script.relative_to(REPO))} | {str(module_path(m).relative_to(REPO)) for m in seen}
    if stage:
        code.add("stages/_stage.py")
    return code
