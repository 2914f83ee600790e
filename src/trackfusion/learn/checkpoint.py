"""Checkpoints: atomic save, safe load (``weights_only=True``), the model rebuilt from its config.

Payload (plain dicts, tensors and numbers only, so ``weights_only`` loading works)::

    model_version    MODEL_VERSION at save time; a different version is refused
    kind             one of ``MODEL_KINDS``
    config           the model's whole ModelConfig, as a dict
    model_state      state dict
    optimizer_state  state dict or None
    scheduler_state  state dict or None
    epoch            int
    extra            dict of plain values (metrics, params, ...)

The model is rebuilt by ``build_model`` (the registry of kinds) from the stored config,
whose ``kind`` must match the payload's ``kind``. ``load_checkpoint(path,
without_content=True)`` turns a multimodal checkpoint into a track-only inference model:
the same network rebuilt with
``use_audio=False, use_visual=False`` (its audio/visual embeddings are dropped),
whose outputs equal the full model's with audio and visual unavailable
(modality_mask False), the regime it sees during training for missing features.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from trackfusion.atomic import atomic_path
from trackfusion.learn.model import ModelConfig, build_model

log = logging.getLogger(__name__)

MODEL_VERSION = 9  # 5: one EditTransformer, the whole ModelConfig and the kind; 6: ModelConfig.layout_veto;
# 7: ModelConfig.kind and .causal in place of enable_multimodal; 8: the content-only state heads (EditHeads.state);
# 9: the which head (EditHeads.which)
_KEYS = ("model_version", "kind", "config", "model_state")


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
    payload = {
        "model_version": MODEL_VERSION,
        "kind": model.config.kind,
        "config": model.config.to_dict(),
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
    """The validated payload, its config a ModelConfig; CheckpointError / FileNotFoundError name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, random bytes, unsafe pickle: all "not a checkpoint"
        raise CheckpointError(f"{path}: not a trackfusion model file (it does not read as a checkpoint; "
                              f"{type(exc).__name__}); give one the training stages wrote, e.g. models/multimodal.pt"
                              ) from exc
    if not isinstance(payload, dict) or any(k not in payload for k in _KEYS):
        got = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path}: not a trackfusion checkpoint; expected keys {list(_KEYS)}, got {got}")
    if payload["model_version"] != MODEL_VERSION:
        raise CheckpointError(
            f"{path}: model_version {payload['model_version']!r}, this code reads model_version {MODEL_VERSION}; "
            "the file was written by another version of trackfusion: train it again (dvc repro)"
        )
    try:
        config = ModelConfig.from_dict(payload["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: unusable model config ({exc})") from exc
    if payload["kind"] != config.kind:
        raise CheckpointError(f"{path}: kind {payload['kind']!r} does not match its config (a {config.kind} config)")
    payload["config"] = config
    return payload


def load_checkpoint(
    path: str | Path,
    map_location: Any = "cpu",
    without_content: bool = False,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from the stored config and weights; returns (model, payload).

    ``without_content=True`` gives a model that ignores audio and visual (see module doc).
    If `optimizer` / `scheduler` are given, their stored states are restored too.
    """
    payload = read_checkpoint(path, map_location)
    config = payload["config"]
    state = payload["model_state"]
    if without_content and config.multimodal:
        config = dataclasses.replace(config, use_audio=False, use_visual=False)
        state = {k: v for k, v in state.items() if not k.startswith(("audio_embed.", "visual_embed.", "toggle."))}
    try:
        model = build_model(config)
        model.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: weights do not fit the stored config ({exc})") from exc
    if optimizer is not None and payload.get("optimizer_state") is not None:
        optimizer.load_state_dict(payload["optimizer_state"])
    if scheduler is not None and payload.get("scheduler_state") is not None:
        scheduler.load_state_dict(payload["scheduler_state"])
    log.info("loaded %s checkpoint %s (epoch %s)%s", payload["kind"], path, payload.get("epoch"),
             ", track-only inference" if without_content else "")  # fmt: skip
    return model.to(map_location) if isinstance(map_location, (str, torch.device)) else model, payload
