"""MultiTrackLoss: one loss for both models (SPEC 5).

- ``active``: BCE with logits over every real track-frame.
- ``asset``: cross-entropy, ``scale``/``position``/``crop``: MSE, on track-frames whose
  *target* is active only (an inactive track has no asset or geometry to predict).
- ``change_weight``: track-frames whose target active flag or asset differs from the
  previous frame's (the cuts, a few per cent of frames) weigh this much more in the
  active and asset terms (a weighted mean). Rare events otherwise barely move the
  loss once the model copies the previous frame; 1 gives the plain means.
- ``cut``: BCE of the per-frame cut logit against "the layout changes at this frame"
  (``trackfusion.cuts``), cut frames weighted by ``cut_pos_weight``; a video's first
  frame (no previous frame, ``has_prev`` False) does not count. A model with a layout
  veto also returns its cut logit before the veto (``cut_content``), and the same BCE of
  that logit is added: the content alone must announce the cut, the veto only refines it.
- ``which``: BCE of each track's "changes at this cut" logit against its change, on the
  true cut frames only (``model.WHICH_KEY``: given that the frame is a cut, which tracks).
  With ``which_window`` w > 1 the target is the track changing at the cut or in the w - 1
  frames after it: the roll-out fires at most once per ``spacing`` frames, so a face-cam
  switch two frames after a scene cut was never made and the toggle stayed wrong until the
  next turn; now the first fire makes both where the content already announces the second
  (a speaker turn heard before the cut; one heard after it is still missed).
- Padding never counts. Each component is the mean over the elements it counts
  (a position term averages x and y, a crop term the four crops) and is 0, not NaN,
  when nothing counts. ``total`` is the weighted sum with weights from params.

Values at uncounted positions are replaced before the elementwise losses, not
multiplied away afterwards, so garbage there (out-of-range asset ids, inf) can change
neither the loss nor its gradients.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from trackfusion import schema
from trackfusion.cuts import track_changes
from trackfusion.params import LossParams

COMPONENTS: tuple[str, ...] = ("active", "asset", "scale", "position", "crop", "cut", "state", "which")


def split_targets(frames: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B, T, N*9) schema-layout frames -> active, asset, scale (B, T, N), position (B, T, N, 2), crop (B, T, N, 4)."""
    width = frames.shape[-1]

    def cols(name: str) -> torch.Tensor:
        return frames[..., schema.track_columns(name, width)]  # (B, T, N)

    out = {}
    for head, names in schema.HEAD_PARAMS.items():  # one column -> (B, T, N); several -> (B, T, N, k)
        out[head] = cols(names[0]) if len(names) == 1 else torch.stack([cols(n) for n in names], dim=-1)
    return out


def _masked_mean(values: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """(Weighted) mean of values where mask (broadcast to values) is True; 0 when nothing counts."""
    mask = mask.expand_as(values)
    w = mask.to(values.dtype) if weight is None else torch.where(mask, weight.expand_as(values), 0.0)
    total = torch.where(mask, values * w, torch.zeros_like(values)).sum()
    return total / w.sum().clamp(min=1)


class MultiTrackLoss(nn.Module):
    def __init__(self, weights: LossParams | Mapping[str, float] | None = None):
        super().__init__()
        if weights is None:
            weights = LossParams()
        elif not isinstance(weights, LossParams):
            allowed = [f.name for f in dataclasses.fields(LossParams)]
            unknown = sorted(set(weights) - set(allowed))
            if unknown:
                raise ValueError(f"unknown loss weight '{unknown[0]}'; allowed: {', '.join(allowed)}")
            defaults = LossParams()  # each value as its field's type: the weights float, which_window int
            weights = LossParams(**{k: type(getattr(defaults, k))(v) for k, v in weights.items()})
        self.weights = {k: getattr(weights, k) for k in COMPONENTS}
        self.which_window = max(int(weights.which_window), 1)
        self.change_weight = float(weights.change_weight)
        self.cut_pos_weight = float(weights.cut_pos_weight)

    def forward(
        self,
        outputs: Mapping[str, torch.Tensor],
        targets: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        prev_track: torch.Tensor | None = None,
        has_prev: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """`prev_track` (B, T, N*9), the previous frame's state, is needed for `change_weight` != 1
        and for the cut term; `has_prev` (B, T) is False where a frame has no previous frame."""
        B, T, N = outputs["active"].shape
        if targets.shape != (B, T, N * schema.NUM_TRACK_PARAMS):
            raise ValueError(
                f"targets: expected ({B}, {T}, {N * schema.NUM_TRACK_PARAMS}), got {tuple(targets.shape)}"
            )
        t = split_targets(targets.float())
        if padding_mask is None:
            padding_mask = torch.ones(B, T, dtype=torch.bool, device=targets.device)
        real = padding_mask.bool().unsqueeze(-1).expand(B, T, N)  # (B, T, N) track-frames that count for `active`
        on = real & (torch.nan_to_num(t["active"]) > 0.5)  # (B, T, N) track-frames with parameter terms

        zero = torch.zeros((), device=targets.device)
        clean = torch.nan_to_num(targets.float())
        changed = cut_t = has_frames = readable = None  # with a previous frame: what changed, read once for every term
        if prev_track is not None:
            changed = track_changes(clean, prev_track.float())  # (B, T, N) the track's layout key changed
            cut_t = changed.any(-1).float()  # (B, T) a cut (``cuts.cut_flags``)
            has_frames = padding_mask.bool() if has_prev is None else padding_mask.bool() & has_prev.bool()  # (B, T)
            readable = real & has_frames.unsqueeze(-1)  # (B, T, N) track-frames whose change can be read
        weight = None  # (B, T, N): heavier where the track's state changes (a cut on that track)
        if changed is not None and self.change_weight != 1.0:
            weight = 1.0 + (self.change_weight - 1.0) * changed.float()
        act_t = torch.where(real, t["active"].clamp(0, 1), zero)
        active = F.binary_cross_entropy_with_logits(outputs["active"].float(), act_t, reduction="none")

        K = outputs["asset"].shape[-1]
        asset_t = torch.where(on, torch.nan_to_num(t["asset"]).round().clamp(0, K - 1), zero).long()  # (B, T, N)
        asset = F.cross_entropy(outputs["asset"].float().reshape(-1, K), asset_t.reshape(-1), reduction="none")

        def mse(key: str) -> torch.Tensor:
            m = on if outputs[key].dim() == 3 else on.unsqueeze(-1)
            target = torch.where(m, t[key], zero)
            return _masked_mean((outputs[key].float() - target) ** 2, m)

        cut = zero
        if "cut" in outputs and cut_t is not None:
            frame_weight = 1.0 + (self.cut_pos_weight - 1.0) * cut_t
            for key in ("cut", "cut_content"):
                if key in outputs:
                    bce = F.binary_cross_entropy_with_logits(outputs[key].float(), cut_t, reduction="none")
                    cut = cut + _masked_mean(bce, has_frames, frame_weight)

        state = zero
        if "state_active" in outputs:  # the content-only state heads: plain means, every frame counts alike
            bce = F.binary_cross_entropy_with_logits(outputs["state_active"].float(), act_t, reduction="none")
            ce = F.cross_entropy(outputs["state_asset"].float().reshape(-1, K), asset_t.reshape(-1), reduction="none")
            state = _masked_mean(bce, real) + _masked_mean(ce.reshape(B, T, N), on)
            if changed is not None:  # each track's own change: "this track's layout changes here"
                bce = F.binary_cross_entropy_with_logits(outputs["state_change"].float(), changed.float(),
                                                         reduction="none")  # fmt: skip
                state = state + _masked_mean(bce, readable, 1.0 + (self.cut_pos_weight - 1.0) * changed.float())

        which = zero
        if "which" in outputs and changed is not None:  # which tracks change, on the true cuts only
            at_cut = readable & (cut_t > 0).unsqueeze(-1)  # (B, T, N)
            counted = changed & readable
            ahead = counted.clone()  # the track changes at the cut or within which_window - 1 frames after it
            for k in range(1, min(self.which_window, T)):
                ahead[:, : T - k] |= counted[:, k:]
            bce = F.binary_cross_entropy_with_logits(outputs["which"].float(), ahead.float(), reduction="none")
            which = _masked_mean(bce, at_cut)

        parts = {
            "which": which,
            "state": state,
            "active": _masked_mean(active, real, weight),
            "asset": _masked_mean(asset.reshape(B, T, N), on, weight),
            "scale": mse("scale"),
            "position": mse("position"),
            "crop": mse("crop"),
            "cut": cut,
        }
        parts["total"] = sum(self.weights[k] * parts[k] for k in COMPONENTS)
        return {"total": parts["total"], **{k: parts[k] for k in COMPONENTS}}
