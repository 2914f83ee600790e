"""The resume fingerprint: what a resumed run must share with the interrupted one.

Params (but the epochs of a constant schedule), the package's code and every byte of
the corpus. Any other change starts afresh, so a run never mixes two loss definitions
or two corpora.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from trackfusion.params import Params


def run_fingerprint(params: Params, kind: str, corpus_dir: Path, code_dir: Path | None = None) -> str:
    """sha256 over the kind, the params, every `.py` under `code_dir` (default: trackfusion/)
    and every file of the corpus folder."""
    raw = params.to_dict()
    if params.train.lr_schedule == "constant":  # a schedule over the epochs depends on their number
        raw["train"].pop("epochs")  # more epochs may continue a run; every other change starts afresh
    h = hashlib.sha256()
    h.update(json.dumps({"kind": kind, "params": raw}, sort_keys=True).encode())
    package = code_dir or Path(__file__).resolve().parents[1]  # trackfusion/, every subpackage
    code = sorted(package.rglob("*.py"))
    for path in code + sorted(p for p in Path(corpus_dir).iterdir() if p.is_file()):
        h.update(str(path.relative_to(package) if path in code else path.name).encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
