"""Modality embeddings and their per-frame fusion.

Every fusion here works on the modalities *of one frame* only: it never mixes frames,
so putting it in front of the causal encoder cannot leak the future. Attention fusion
in particular runs before positional encoding, so its weights depend on a frame's
content and not on where the frame sits in the window.

Unavailable modalities (``mask`` False) are zeroed before fusion and excluded from
every fusion weight. How each fusion excludes them:

- ``concat``: the zeroed embedding enters Linear(M d, d) as zeros.
- ``add``: weights are a softmax of learned per-modality logits taken over the
  *available* modalities only, so they are renormalised (sum to 1 over what is there)
  and an unavailable modality gets weight exactly 0.
- ``gated``: its gate is set to 0 (and its embedding is zero anyway).
- ``attention``: it is masked as a key and left out of the pooled output.

A frame with no available modality at all fuses to zeros (``add``, ``gated``,
``attention``) or to the bias of the projection (``concat``), never to NaN.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from trackfusion.params import FUSION_TYPES


class ModalityEmbedding(nn.Module):
    """Linear projection of one modality's features to d_model, then dropout."""

    def __init__(self, input_dim: int, d_model: int, dropout: float = 0.1):
        super().__init__()
        self.input_dim = input_dim
        self.proj = nn.Linear(input_dim, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(x))  # (B, T, F) -> (B, T, D)


class ModalityFusion(nn.Module):
    """Fuse ``num_modalities`` embeddings of each frame into one d_model vector.

    ``forward(x, mask)`` takes ``x (B, T, M, D)`` and ``mask (B, T, M)`` bool (True =
    available, None = all available) and returns ``(B, T, D)``. ``fuse`` returns the
    fused tensor together with the weights the fusion used, for inspection and tests:

    - ``concat``: None
    - ``add``: ``(B, T, M)`` effective weights (softmax over available modalities)
    - ``gated``: ``(B, T, M, D)`` gates in [0, 1] (0 for unavailable modalities)
    - ``attention``: ``(B, T, M, M)`` attention weights (query, key), averaged over heads
    """

    def __init__(
        self,
        d_model: int,
        num_modalities: int = 3,
        fusion_type: str = "gated",
        nhead: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__()
        if fusion_type not in FUSION_TYPES:
            raise ValueError(f"fusion_type is {fusion_type!r}; allowed values: {', '.join(FUSION_TYPES)}")
        self.d_model = d_model
        self.num_modalities = num_modalities
        self.fusion_type = fusion_type
        if fusion_type == "concat":
            self.proj = nn.Linear(num_modalities * d_model, d_model)
        elif fusion_type == "add":
            # logits of the modality weights; zeros = equal weights at start
            self.weight_logits = nn.Parameter(torch.zeros(num_modalities))
        elif fusion_type == "gated":
            # one gate network per modality, each sees only its own embedding
            self.gates = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(num_modalities))
        else:
            self.attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.fuse(x, mask)[0]

    def fuse(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, M, D = x.shape
        if M != self.num_modalities or D != self.d_model:
            expected = f"(B, T, {self.num_modalities}, {self.d_model})"
            raise ValueError(f"fusion input: expected {expected}, got {tuple(x.shape)}")
        if mask is None:
            mask = torch.ones(B, T, M, dtype=torch.bool, device=x.device)
        mask = mask.bool()
        x = x * mask.unsqueeze(-1).to(x.dtype)  # unavailable modalities are zero before fusion
        return getattr(self, f"_{self.fusion_type}")(x, mask)

    def _concat(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, None]:
        B, T, M, D = x.shape
        return self.proj(x.reshape(B, T, M * D)), None  # (B, T, M*D) -> (B, T, D)

    def modality_weights(self, mask: torch.Tensor) -> torch.Tensor:
        """``add`` fusion's effective weights (B, T, M): softmax over available modalities."""
        logits = self.weight_logits.to(torch.float32).expand(mask.shape)  # (B, T, M)
        logits = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
        # an all-unavailable row gives a uniform softmax that the mask then zeroes: no NaN
        return torch.softmax(logits, dim=-1) * mask

    def _add(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.modality_weights(mask).to(x.dtype)  # (B, T, M)
        return (w.unsqueeze(-1) * x).sum(dim=2), w  # (B, T, D)

    def _gated(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gates = torch.stack([torch.sigmoid(g(x[:, :, m])) for m, g in enumerate(self.gates)], dim=2)  # (B, T, M, D)
        gates = gates * mask.unsqueeze(-1).to(gates.dtype)
        return (gates * x).sum(dim=2), gates  # (B, T, D)

    def _attention(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, M, D = x.shape
        tokens = x.reshape(B * T, M, D)  # each frame's modalities form one tiny sequence
        avail = mask.reshape(B * T, M)
        none = ~avail.any(dim=-1, keepdim=True)  # (B*T, 1) frames with nothing available
        # keys of a frame with nothing available stay unmasked (all zero anyway) so the
        # softmax has something to normalise over; its output is zeroed below
        key_padding = ~(avail | none)  # PyTorch: True = ignore this key
        out, weights = self.attn(tokens, tokens, tokens, key_padding_mask=key_padding, need_weights=True)
        out = tokens + out  # residual, (B*T, M, D)
        keep = avail.unsqueeze(-1).to(out.dtype)  # (B*T, M, 1)
        fused = (out * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1)  # mean over available queries
        return fused.reshape(B, T, D), weights.reshape(B, T, M, M)
