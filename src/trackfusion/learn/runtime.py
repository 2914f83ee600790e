"""What a training run needs from its machine: the device, the optimizer and schedule,
every RNG seeded, saved and restored, the per-epoch shuffle and the peak memory.

Kept apart from the Trainer so that the loop, the recipe and the benchmarks build a
run's pieces the same way, and so that a resumed run draws what an uninterrupted one would.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch import nn

from trackfusion.params import TrainParams
from trackfusion.results import peak_rss_mb


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """auto: CUDA when present, else CPU. Asking for CUDA without one is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"train.device is {device!r} but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(device)


def build_optimizer(model: nn.Module, train: TrainParams, device: torch.device) -> torch.optim.Optimizer:
    """AdamW; the fused kernel on CUDA (one launch for all parameters)."""
    return torch.optim.AdamW(
        model.parameters(), lr=train.lr, weight_decay=train.weight_decay, fused=device.type == "cuda"
    )


def build_scheduler(optimizer: torch.optim.Optimizer, train: TrainParams) -> Any:
    """The per-epoch learning-rate schedule, or None for a constant rate."""
    if train.lr_schedule == "constant":
        return None
    return torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=train.epochs, eta_min=train.lr * train.lr_final_fraction
    )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every RNG the training draws from, in types that `torch.load(weights_only=True)` reads."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},  # fmt: skip
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    random.setstate(_as_tuple(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated on CUDA; peak resident set size of the process on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return peak_rss_mb()


def set_epoch(loader: Any, epoch: int, seed: int) -> None:
    """Reshuffle per epoch from (seed, epoch) alone, so a resumed run draws the same order."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    generator = getattr(loader, "generator", None)
    if generator is not None:
        generator.manual_seed(seed * 1_000_003 + epoch)
