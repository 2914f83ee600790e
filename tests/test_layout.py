"""The package's layout is the data's path, and imports only go down it (issue 13).

    top level (schema, params, atomic, results, cuts, layouts, selection, intervals, timemap)  <  io  <  data  <  learn  <  experiment  <  cli

A module may import from its own layer and the layers before it, never from a later
one: reading files knows nothing of corpora, building a corpus nothing of models, a
model nothing of the experiment that scores it.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "trackfusion"
LAYERS = {"": 0, "io": 1, "data": 2, "learn": 3, "experiment": 4, "cli": 5}
TOP_LEVEL = {"__init__", "schema", "params", "atomic", "results", "cuts", "layouts", "selection", "intervals", "timemap",
             "errors", "cli"}


def layer_of(module: str) -> int:
    """``trackfusion.learn.model`` -> 3; a top-level module is layer 0 (``cli`` the last)."""
    parts = module.split(".")[1:]
    if not parts:
        return 0
    return LAYERS[parts[0]] if parts[0] in LAYERS else 0


def imports_of(source: str) -> set[str]:
    """trackfusion modules a source imports, at any depth (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "trackfusion":
            found.add(node.module)
            if node.module == "trackfusion":
                found |= {f"trackfusion.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "trackfusion"}
    return found


def violations(module: str, source: str) -> list[str]:
    own = layer_of(module)
    return sorted(f"{module} imports {m}" for m in imports_of(source) if layer_of(m) > own)


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        found.append((".".join(("trackfusion", *parts)), path))
    return found


@pytest.mark.parametrize("module, path", modules(), ids=[m for m, _ in modules()])
def test_imports_only_go_down_the_data_path(module: str, path: Path) -> None:
    assert violations(module, path.read_text(encoding="utf-8")) == []


def test_the_rule_catches_an_import_from_a_later_layer() -> None:
    """The checker itself can fail: a corpus builder that reaches for the model."""
    bad = "from trackfusion.learn.model import EditTransformer\ndef f():\n    from trackfusion.experiment import compare\n"
    assert violations("trackfusion.data.build", bad) == [
        "trackfusion.data.build imports trackfusion.experiment",
        "trackfusion.data.build imports trackfusion.learn.model",
    ]
    assert violations("trackfusion.experiment.compare", bad) == []


def test_every_module_sits_in_a_layer() -> None:
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top <= TOP_LEVEL, f"modules outside the layers: {sorted(top - TOP_LEVEL)}"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(LAYERS) - {"", "cli"}


def test_the_public_api_resolves_every_name_it_lists() -> None:
    import trackfusion

    for name in trackfusion.__all__:
        assert getattr(trackfusion, name) is not None, name
    for sub in ("io", "data", "learn", "experiment"):
        package = importlib.import_module(f"trackfusion.{sub}")
        for name in package.__all__:
            if (PACKAGE / sub / name / "__init__.py").exists():  # a package of its own (io.timeline, data.synthetic)
                inner = importlib.import_module(f"trackfusion.{sub}.{name}")
                for public in inner.__all__:
                    assert getattr(inner, public, None) is not None, f"trackfusion.{sub}.{name}.__all__ lists {public}"
                continue
            assert (PACKAGE / sub / f"{name}.py").exists(), f"trackfusion.{sub}.__all__ lists {name}"
