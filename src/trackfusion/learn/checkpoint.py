"""Checkpoints: atomic save, safe load (``weights_only=True``), model type from the config.

Payload (plain dicts, tensors and numbers only, so ``weights_only`` loading works)::

    model_version    MODEL_VERSION at save time; a different version is refused
    model_type       "multimodal" | "track_only"
    config           the model's constructor kwargs (``model.config``)
    model_state      state dict
    optimizer_state  state dict or None
    scheduler_state  state dict or None
    epoch            int
    extra            dict of plain values (metrics, params, ...)

The type is detected from the stored config (a multimodal config has ``fusion_type``)
and checked against ``model_type``. ``load_checkpoint(path, track_only=True)`` turns a
multimodal checkpoint into a track-only inference model: the same network rebuilt
with ``use_audio=False, use_visual=False`` (its audio/visual embeddings are dropped),
whose outputs equal the full model's with audio and visual unavailable
(modality_mask False), the regime it sees during training for missing features.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from trackfusion.atomic import atomic_path
from trackfusion.learn.model import MultimodalTransformer, MultiTrackTransformer

log = logging.getLogger(__name__)

MODEL_VERSION = 4  # 4: the causal encoders are `encoder` and `cut_encoder` in the state dict
MODEL_TYPES = ("multimodal", "track_only")
_KEYS = ("model_version", "model_type", "config", "model_state")


class CheckpointError(RuntimeError):
    """A checkpoint file is unreadable, incomplete or from another model version."""


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DistributedDataParallel and/or torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        else:
            return model


def model_type_of(config: dict[str, Any]) -> str:
    return "multimodal" if "fusion_type" in config else "track_only"


def model_from_config(config: dict[str, Any]) -> nn.Module:
    cls = MultimodalTransformer if model_type_of(config) == "multimodal" else MultiTrackTransformer
    return cls(**config)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    epoch: int = 0,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint to a temporary file beside `path`, then rename it into place."""
    model = unwrap(model)
    config = dict(model.config)
    payload = {
        "model_version": MODEL_VERSION,
        "model_type": model_type_of(config),
        "config": config,
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer_state": None if optimizer is None else optimizer.state_dict(),
        "scheduler_state": None if scheduler is None else scheduler.state_dict(),
        "epoch": int(epoch),
        "extra": dict(extra or {}),
    }
    path = Path(path)
    # saved through a file object: torch names the archive inside the zip after a path it is
    # given, and the temporary name would make identical weights differ byte for byte
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(payload, fh)
    return path


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The validated payload; CheckpointError / FileNotFoundError name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, random bytes, unsafe pickle: all "not a checkpoint"
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or any(k not in payload for k in _KEYS):
        got = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path}: not a trackfusion checkpoint; expected keys {list(_KEYS)}, got {got}")
    if payload["model_version"] != MODEL_VERSION:
        raise CheckpointError(
            f"{path}: model_version {payload['model_version']!r}, this code reads model_version {MODEL_VERSION}"
        )
    detected = model_type_of(payload["config"])
    if payload["model_type"] != detected:
        raise CheckpointError(
            f"{path}: model_type {payload['model_type']!r} does not match its config (a {detected} config)"
        )
    return payload


def load_checkpoint(
    path: str | Path,
    map_location: Any = "cpu",
    track_only: bool = False,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from the stored config and weights; returns (model, payload).

    ``track_only=True`` gives a model that ignores audio and visual (see module doc).
    If `optimizer` / `scheduler` are given, their stored states are restored too.
    """
    payload = read_checkpoint(path, map_location)
    config = dict(payload["config"])
    state = payload["model_state"]
    if track_only and model_type_of(config) == "multimodal":
        config.update(use_audio=False, use_visual=False)
        state = {k: v for k, v in state.items() if not k.startswith(("audio_embed.", "visual_embed."))}
    try:
        model = model_from_config(config)
        model.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: weights do not fit the stored config ({exc})") from exc
    if optimizer is not None and payload.get("optimizer_state") is not None:
        optimizer.load_state_dict(payload["optimizer_state"])
    if scheduler is not None and payload.get("scheduler_state") is not None:
        scheduler.load_state_dict(payload["scheduler_state"])
    log.info("loaded %s checkpoint %s (epoch %s)%s", payload["model_type"], path, payload.get("epoch"),
             ", track-only inference" if track_only else "")  # fmt: skip
    return model.to(map_location) if isinstance(map_location, (str, torch.device)) else model, payload
