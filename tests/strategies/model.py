"""Hypothesis strategies for tiny models, batches and head outputs.

Tensors are drawn from a seeded torch generator rather than element by element:
Hypothesis explores the shapes, configs, masks and seeds, and a failing example
still shrinks to a small, reproducible one.
"""
from __future__ import annotations

import dataclasses

import torch
from hypothesis import strategies as st

from trackfusion import schema
from trackfusion.learn.dataset import previous_frames
from trackfusion.learn.model import ModelConfig
from trackfusion.params import CUT_CONTEXTS, FUSION_TYPES
from tests.strategies.tracks import random_frames

P = schema.NUM_TRACK_PARAMS


def random_padding(gen: torch.Generator, B: int, T: int) -> torch.Tensor:
    """(B, T) True = real frame; each row is right-padded and keeps at least one real frame."""
    lengths = torch.randint(1, T + 1, (B,), generator=gen)
    lengths[0] = T  # the batch is as long as its longest window
    return torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)


@st.composite
def model_configs(
    draw: st.DrawFn,
    *,
    multimodal: bool = True,
    fusion_types: tuple[str, ...] = FUSION_TYPES,
    standard_widths: bool = False,
) -> ModelConfig:
    """A tiny model's config (d_model 8..16); small feature widths unless standard_widths."""
    nhead = draw(st.sampled_from([1, 2, 4]))
    d_model = nhead * draw(st.integers(min_value=max(1, 8 // nhead), max_value=16 // nhead))
    num_tracks = schema.NUM_TRACKS if standard_widths else draw(st.integers(1, 3))
    return ModelConfig(
        kind="multimodal" if multimodal else "baseline",
        d_model=d_model,
        nhead=nhead,
        num_encoder_layers=draw(st.integers(1, 2)),
        dim_feedforward=draw(st.sampled_from([8, 16, 32])),
        dropout=draw(st.sampled_from([0.0, 0.1])),
        num_tracks=num_tracks,
        max_asset_classes=schema.NUM_ASSET_CLASSES if standard_widths else draw(st.integers(2, 5)),
        max_len=64,
        audio_features=schema.AUDIO_WIDTH if standard_widths else draw(st.integers(1, 6)),
        visual_features=schema.VISUAL_WIDTH if standard_widths else draw(st.integers(1, 12)),
        fusion_type=draw(st.sampled_from(fusion_types)),
        cut_context=draw(st.sampled_from(CUT_CONTEXTS)),
        layout_veto=draw(st.booleans()),
        toggle_tracks=tuple(draw(st.lists(st.integers(0, min(num_tracks, 3) - 1), unique=True, max_size=2))),
    )


def baseline_of(config: ModelConfig) -> ModelConfig:
    """The track-only baseline of the same size."""
    return dataclasses.replace(config, kind="baseline")


def make_batch(
    config: ModelConfig, *, B: int, T: int, seed: int, padded: bool = True, partial_modalities: bool = True
) -> dict[str, torch.Tensor]:
    """A dataset-style batch fitting `config` (a model's ``.config``).

    Keys: audio, visual, prev_track, targets, padding_mask (B, T) True = real, modality_mask (B, T, 3).
    The track input is the targets shifted by one frame (zeros first); masked-out
    features are zero, as the dataset delivers them.
    """
    gen = torch.Generator().manual_seed(seed)
    N, K = config.num_tracks, config.max_asset_classes
    targets = random_frames(gen, B, T, N, K)
    track = torch.stack([torch.from_numpy(previous_frames(t.numpy(), 0, T)) for t in targets])  # the dataset's rule
    padding = random_padding(gen, B, T) if padded else torch.ones(B, T, dtype=torch.bool)
    mm = torch.ones(B, T, 3, dtype=torch.bool)
    if partial_modalities:
        mm[..., :2] = torch.rand(B, T, 2, generator=gen) < 0.7
    audio = torch.randn(B, T, config.audio_features, generator=gen) * mm[..., :1]
    visual = torch.randn(B, T, config.visual_features, generator=gen) * mm[..., 1:2]
    return dict(audio=audio, visual=visual, prev_track=track, targets=targets, padding_mask=padding, modality_mask=mm)


@st.composite
def batches(
    draw: st.DrawFn,
    config: ModelConfig,
    *,
    max_batch: int = 3,
    max_len: int = 12,
    padded: bool = True,
    partial_modalities: bool = True,
) -> dict[str, torch.Tensor]:
    """Batches of :func:`make_batch` with drawn size, length and seed."""
    B, T = draw(st.integers(1, max_batch)), draw(st.integers(1, max_len))
    seed = draw(st.integers(0, 2**31 - 1))
    return make_batch(config, B=B, T=T, seed=seed, padded=padded, partial_modalities=partial_modalities)


@st.composite
def edit_outputs(
    draw: st.DrawFn, *, max_batch: int = 3, max_len: int = 12, max_tracks: int = 4, max_classes: int = 5
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """(head outputs, targets (B,T,N*9), padding_mask (B,T)) with random logits and values."""
    B, T = draw(st.integers(1, max_batch)), draw(st.integers(1, max_len))
    N, K = draw(st.integers(1, max_tracks)), draw(st.integers(2, max_classes))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    outputs = {
        "active": torch.randn(B, T, N, generator=gen) * 2,
        "asset": torch.randn(B, T, N, K, generator=gen),
        "scale": torch.randn(B, T, N, generator=gen),
        "position": torch.randn(B, T, N, 2, generator=gen),
        "crop": torch.randn(B, T, N, 4, generator=gen),
    }
    return outputs, random_frames(gen, B, T, N, K), random_padding(gen, B, T)
