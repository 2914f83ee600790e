"""trackfusion: learn how a video editor edits, reproducibly (DVC + PyTorch).

The library behind the DVC stages in ``stages/``, laid out by the data's path (see
``docs/ARCHITECTURE.md``): ``io`` (files) -> ``data`` (corpus) -> ``learn`` (models)
-> ``experiment`` (scores, references, write-up), over ``schema``, ``params``,
``atomic`` and ``cuts``. The names below are the public API; they are imported on
first use, so ``import trackfusion`` stays cheap and a stage loads only what it runs.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_API: dict[str, str] = {
    "Params": "trackfusion.params",
    "load_params": "trackfusion.params",
    "import_timeline": "trackfusion.io.timeline",
    "export_timeline": "trackfusion.io.timeline",
    "read_features": "trackfusion.io.features",
    "write_sequences": "trackfusion.io.sequences",
    "SequenceReader": "trackfusion.io.sequences",
    "TrackData": "trackfusion.io.sequences",
    "TimeMap": "trackfusion.timemap",
    "Segment": "trackfusion.timemap",
    "generate_corpus": "trackfusion.data.synthetic",
    "ingest_timelines": "trackfusion.data.ingest",
    "Corpus": "trackfusion.data.corpus",
    "EditWindowDataset": "trackfusion.learn.dataset",
    "EditTransformer": "trackfusion.learn.model",
    "ModelConfig": "trackfusion.learn.model",
    "load_checkpoint": "trackfusion.learn.checkpoint",
    "train_model": "trackfusion.learn.recipe",
    "rollout": "trackfusion.learn.rollout",
    "CutScore": "trackfusion.cuts",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'trackfusion' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
