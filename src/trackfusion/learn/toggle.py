"""The toggle head: a track that the audio switches on and off (the face cam, toggled on
each speaker turn) is switched by a small head of its own, not by the cut and which heads.

Why. A toggle is a parity: every switch missed or added leaves the track wrong until the
next error, so one error early in a video inverts the rest of it. The editor follows
75-95 % of speaker turns, so the best guess at every turn is to switch, which is what the
layout rule and the layout ceiling do. The which head switched the face cam only where the
cut head fired, and missed the turns heard within the cut decoding's spacing after
another fire; and, reading the whole trunk, it learned which turns the train videos'
editors happened to skip (a flexible head given the other scalars too fitted all 142
train switches and missed 6 of 18 on val). This head is small on purpose: it reads the
audio inputs of the last ``TOGGLE_CONTEXT`` frames and how many frames ago the track last
changed in the layout it is shown (one-hot, 1..``TOGGLE_CONTEXT`` or longer), nothing else.

Its target at frame t: the track switches at t or in the next ``TOGGLE_AHEAD`` - 1 frames.
The editor's lag spreads a switch over 0-3 frames after the turn, so no single frame is
likely, where "within 3 frames" is. Rolled out (``apply_toggles``), a governed track
switches where the probability reaches ``predict.toggle_threshold``, at least
``TOGGLE_AHEAD`` frames after its last switch (``toggle_ready``); having switched, the head reads
"changed k frames ago" and does not switch again for the same event. It is causal: frame t reads frames <= t of the audio and the
layout up to frame t - 1.

It is fitted after training (``fit_toggle_head``: full batch on the train videos' edits,
as the cut decoding is chosen after training). Its parameters take no part in the training
steps (``requires_grad`` False, so DDP and the optimiser never see them), so the rest of the
model trains exactly as it would without it.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from trackfusion import cuts, schema
from trackfusion.data.corpus import Corpus

log = logging.getLogger(__name__)

TOGGLE_KEY = "toggle"  # the model output: (B, T, len(toggle_tracks)) logits "this track switches now or soon"
TOGGLE_CONTEXT = 6  # frames of audio read, and of the track's own history (0.6 s at 10 fps: the editor's lag is 0-3)
TOGGLE_AHEAD = 3  # the target: a switch at this frame or in the next TOGGLE_AHEAD - 1
HIDDEN = 32
FIT_STEPS = 3000  # full-batch AdamW steps over the train videos' frames (about a minute on 2 CPU cores)
FIT_LR = 3e-3
FIT_WEIGHT_DECAY = 0.01
_ACTIVE = schema.param_index("active")
_ASSET = schema.param_index("asset_id")


def audio_window(audio: torch.Tensor, context: int = TOGGLE_CONTEXT) -> torch.Tensor:
    """(B, T, A) -> (B, T, A * context): each frame's audio and that of the frames before it
    (zeros before the first frame), newest first."""
    B, T, A = audio.shape
    padded = F.pad(audio, (0, 0, context - 1, 0))  # (B, T + context - 1, A)
    frames = [padded[:, context - 1 - k : context - 1 - k + T] for k in range(context)]
    return torch.cat(frames, dim=-1)


def _changes(frames: torch.Tensor, tracks: tuple[int, ...]) -> torch.Tensor:
    """(B, T, N*9) -> (B, T, n) bool: each track's layout key (``cuts.track_changes``) differs from
    the row before (never on the first row)."""
    changed = torch.zeros((*frames.shape[:2], len(tracks)), dtype=torch.bool, device=frames.device)
    changed[:, 1:] = cuts.track_changes(frames[:, 1:], frames[:, :-1])[..., list(tracks)]
    return changed


def since_change(prev_track: torch.Tensor, tracks: tuple[int, ...], context: int = TOGGLE_CONTEXT) -> torch.Tensor:
    """(B, T, N*9) layout input (row t holds frame t - 1) -> (B, T, len(tracks)) long: k where each
    track last changed at frame t - 1 - k (k < context), `context` where not within the window
    (a change before the input's first row is not seen)."""
    T = prev_track.shape[1]
    changed = _changes(prev_track, tracks)  # row t: frame t - 1 differs from frame t - 2
    bins = torch.full(changed.shape, context, dtype=torch.long, device=changed.device)
    seen = torch.zeros_like(changed)
    for k in range(min(context, T)):
        at = torch.zeros_like(changed)
        at[:, k:] = changed[:, : T - k] if k else changed
        bins = torch.where(at & ~seen, torch.full_like(bins, k), bins)
        seen |= at
    return bins


class ToggleHead(nn.Module):
    """The logit (B, T, n) that each governed track switches at this frame or soon (module doc)."""

    def __init__(self, audio_features: int, tracks: tuple[int, ...], context: int = TOGGLE_CONTEXT):
        super().__init__()
        self.tracks = tuple(int(t) for t in tracks)
        self.context = context
        self.audio_features = audio_features
        width = audio_features * context + context + 1
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(width, HIDDEN), nn.GELU(), nn.Linear(HIDDEN, 1))
                                  for _ in self.tracks)  # fmt: skip
        self.requires_grad_(False)  # fitted by fit_toggle_head, never by the training steps

    def features(self, audio: torch.Tensor | None, available: torch.Tensor | None, prev_track: torch.Tensor
                 ) -> torch.Tensor:  # fmt: skip
        """(B, T, n, width): what each governed track's head reads at each frame (module doc). `audio`
        (B, T, A) or None (read as zeros), `available` (B, T) its availability, `prev_track` (B, T, N*9)."""
        B, T, _ = prev_track.shape
        x = prev_track.new_zeros(B, T, self.audio_features) if audio is None else torch.nan_to_num(audio.to(prev_track.dtype))
        if available is not None:
            x = x * available.to(x.dtype).unsqueeze(-1)  # unavailable audio reads as zeros (SPEC 5)
        window = audio_window(x, self.context)  # (B, T, A * context)
        since = F.one_hot(since_change(prev_track, self.tracks, self.context), self.context + 1).to(x.dtype)
        return torch.cat([window.unsqueeze(2).expand(B, T, len(self.tracks), -1), since], dim=-1)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """(..., n, width) features -> (..., n) logits, each track by its own network."""
        return torch.cat([mlp(features[..., j, :]) for j, mlp in enumerate(self.mlps)], dim=-1)

    def forward(self, audio: torch.Tensor | None, available: torch.Tensor | None, prev_track: torch.Tensor
                ) -> torch.Tensor:  # fmt: skip
        return self.logits(self.features(audio, available, prev_track))  # (B, T, n)


def toggle_targets(track: torch.Tensor, tracks: tuple[int, ...], ahead: int = TOGGLE_AHEAD) -> torch.Tensor:
    """(B, T, N*9) true frames -> (B, T, n) bool: the track's layout changes at this frame or in
    the next `ahead` - 1 (a video's first frame never changes)."""
    T = track.shape[1]
    changed = _changes(track, tracks)
    target = changed.clone()
    for k in range(1, min(ahead, T)):
        target[:, : T - k] |= changed[:, k:]
    return target


def _video_batch(corpus: Corpus, split: str) -> dict[str, torch.Tensor]:
    """Every video of `split` as one padded batch of its edit (kept frames, in edit order)."""
    videos = [corpus.edit_arrays(v.video_id) for v in corpus.split_videos(split)]
    if not videos:
        raise ValueError(f"{corpus.path}: split '{split}' has no videos to fit the toggle head on")
    T = max(len(v["track"]) for v in videos)
    out = {"audio": np.zeros((len(videos), T, schema.AUDIO_WIDTH), np.float32),
           "available": np.zeros((len(videos), T), bool),
           "track": np.zeros((len(videos), T, schema.TRACK_WIDTH), np.float32),
           "real": np.zeros((len(videos), T), bool)}  # fmt: skip
    for i, v in enumerate(videos):
        n = len(v["track"])
        out["audio"][i, :n] = np.nan_to_num(np.asarray(v["audio"], np.float32))
        out["available"][i, :n] = np.asarray(v["mask"])[:, schema.MODALITIES.index("audio")] > 0
        out["track"][i, :n] = np.nan_to_num(np.asarray(v["track"], np.float32))
        out["real"][i, :n] = True
    return {k: torch.from_numpy(a) for k, a in out.items()}


def fit_toggle_head(head: ToggleHead, corpus: Corpus, split: str = "train", seed: int = 0,
                    steps: int = FIT_STEPS) -> dict[str, Any]:  # fmt: skip
    """Fit `head` (in place) on the edits of `split`: BCE against ``toggle_targets``, teacher-forced
    (the layout input is the true previous frame). Its weights start from `seed`. Returns the fit's
    facts (final loss, frames, switches)."""
    batch = _video_batch(corpus, split)
    track = batch["track"]
    prev = torch.cat([track[:, :1], track[:, :-1]], dim=1)  # row t: frame t - 1 (frame 0: itself, no change)
    target = toggle_targets(track, head.tracks).float()  # (V, T, n)
    counted = (batch["real"] & torch.cat([torch.zeros_like(batch["real"][:, :1]), batch["real"][:, :-1]], 1))
    counted = counted.unsqueeze(-1).expand_as(target)  # (V, T, n) a frame with a previous frame, not padding
    gen = torch.Generator().manual_seed(seed)
    for module in head.modules():
        if isinstance(module, nn.Linear):
            bound = 1.0 / module.in_features ** 0.5  # nn.Linear's own initialisation, from the fit's seed
            with torch.no_grad():
                module.weight.uniform_(-bound, bound, generator=gen)
                module.bias.uniform_(-bound, bound, generator=gen)
    device = next(head.parameters()).device
    with torch.no_grad():  # what the head reads does not depend on its weights: computed once
        features = head.features(batch["audio"], batch["available"], prev)[counted[..., 0]].to(device)  # (M, n, W)
    target = target[counted[..., 0]].to(device)  # (M, n)
    head.requires_grad_(True)
    head.train()
    try:
        opt = torch.optim.AdamW(head.parameters(), lr=FIT_LR, weight_decay=FIT_WEIGHT_DECAY)
        loss = torch.zeros(())
        for _ in range(steps):
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(head.logits(features), target)
            loss.backward()
            opt.step()
    finally:
        head.requires_grad_(False)
        head.eval()
    facts = {"loss": loss.item(), "frames": int(counted[..., 0].sum()), "videos": int(track.shape[0]),
             "switches": int(toggle_targets(track, head.tracks, ahead=1)[counted.cpu()].sum())}  # fmt: skip
    log.info("toggle head fitted on %d %s videos (%d frames, %d switches): loss %.5f", facts["videos"], split,
             facts["frames"], facts["switches"], facts["loss"])
    return facts


def toggle_ready(history: torch.Tensor, tracks: tuple[int, ...]) -> torch.Tensor:
    """(b, n) bool: each governed track may switch at the frame after `history` (b, T, N*9), its
    layout input up to that frame: it has not switched in the last ``TOGGLE_AHEAD`` - 1 frames, the
    frames its target counts one switch in (a switch made a frame or two before the editor's would
    otherwise read as a switch still to come)."""
    return since_change(history, tracks)[:, -1] >= TOGGLE_AHEAD - 1


def apply_toggles(frame: torch.Tensor, prev: torch.Tensor, step: dict[str, torch.Tensor], tracks: tuple[int, ...],
                  threshold: float, ready: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """One roll-out step's frame (b, N*9) with each governed track switched by the toggle head alone:
    it keeps the previous frame's on/off and asset, or switches where sigmoid(toggle) reaches
    `threshold` and it is `ready` (b, n) (``toggle_ready``; None: always); switched on, it shows the
    track heads' likeliest asset; an active track takes the track heads' placement, as any other.
    Whatever the cut, which and state heads decided for it is overruled."""
    b = frame.shape[0]
    out = frame.reshape(b, -1, schema.NUM_TRACK_PARAMS).clone()
    before = prev.reshape(b, -1, schema.NUM_TRACK_PARAMS)
    flip = torch.sigmoid(step[TOGGLE_KEY].float()) >= threshold  # (b, n)
    if ready is not None:
        flip = flip & ready
    for j, tr in enumerate(tracks):
        was_on = before[:, tr, _ACTIVE] > 0.5
        on = was_on ^ flip[:, j]
        asset = torch.where(was_on, before[:, tr, _ASSET], step["asset"][:, tr].float().argmax(-1).to(out.dtype))
        placement = torch.cat([step["scale"][:, tr].float().unsqueeze(-1), step["position"][:, tr].float(),
                               step["crop"][:, tr].float()], dim=-1).to(out.dtype)  # fmt: skip
        row = torch.cat([torch.ones_like(asset).unsqueeze(-1), asset.unsqueeze(-1), placement], dim=-1)
        out[:, tr] = row * on.unsqueeze(-1).to(out.dtype)
    return out.reshape(b, -1)
