"""The selection model: a keep score for every frame of a recording, read from the whole of it.

An editor picks highlights knowing the whole recording, so unlike the layout model (causal,
SPEC 5) this one may look ahead: a frame's score reads the content before and after it.
It never reads the video's track or its kept flags (they are only its training target).

Architecture (:class:`SelectionModel`), linear in the recording's length, so a 60-minute
recording runs on 2 cores in memory that grows with its frames only:

1. each frame's scalars (the normalised audio and visual scalars named in ``audio_inputs`` /
   ``visual_inputs``, their availability) embedded; a modality switched off (``use_audio`` /
   ``use_visual``) is not read at all. Saliency and face geometry are left out by default: they
   are constant within a scene, so they name the scene, and 44 train videos were memorised
   through them (val kept F1 0.832 with every scalar, 0.852 without them, test 0.822 -> 0.831);
2. CLIP, pooled ``pool_frames`` at a time (it changes slowly), read as its likeness to
   ``SCENE_KINDS`` kinds of scene: k-means centres of the train videos' CLIP vectors
   (``fit_scene_kinds``, train only, stored in the model). A menu or loading screen is a
   kind of scene only CLIP shows; 512 raw values let 40 videos be memorised (train F1
   0.85, val 0.74 on the default corpus), a few likenesses do not;
3. three dilated non-causal convolutions (``DILATIONS``): each frame reads +-5.2 s of
   what happens around it, before and after;
4. each frame's state beside its difference from the recording's mean state, so a
   stretch that stands out in a calm recording scores higher than the same stretch in a
   loud one; one logit.

Trained on whole recordings (BCE against ``kept``), the checkpoint the epoch with the best
val kept-frame F1 at the true lengths (the loss keeps falling as the scores grow
confident, the ranking is what decoding reads). The checkpoints are the exponential moving
average of the weights over the optimiser's steps (``select.ema``): with 11 steps an epoch
one step's weights swing, and picking the best of 30 such epochs on 10 val videos picks
the swing as much as the model. ``select.ensemble`` such models, each from
its own seed, make a :class:`SelectionEnsemble` that averages their logits: 44 train videos
leave one model's test kept F1 swinging with its seed (+-0.008 over 15 seeds), five of them
average it out (+-0.002) and gain 0.006. The file (``save_selection`` /
``load_selection``) is plain tensors and numbers, read with ``weights_only=True``.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim import swa_utils
from tqdm import tqdm

from trackfusion import schema, selection
from trackfusion.atomic import atomic_path
from trackfusion.data.corpus import Corpus
from trackfusion.learn.dataset import derangement
from trackfusion.params import Params

log = logging.getLogger(__name__)

SELECTION_VERSION = 3  # 2: the scalars read are named in the config; 3: an ensemble of members
DILATIONS = (1, 3, 9)  # three kernel-9 convolutions: each frame reads +-52 frames (5.2 s at 10 fps)
SCENE_KINDS = 8  # k-means centres of the train videos' CLIP vectors
CLIP_BOTTLENECK = 4  # CLIP's 512 values read as this few: enough for the kind of scene, too few to memorise one
_AUDIO_NAMES = tuple(c.name for c in schema.AUDIO_INPUTS)
_VISUAL_NAMES = tuple(c.name for c in schema.VISUAL_SCALARS)


class SelectionError(RuntimeError):
    """A selection model file is unreadable or from another version."""


@dataclass(frozen=True)
class SelectionConfig:
    hidden: int = 32
    pool_frames: int = 5
    use_audio: bool = True
    use_visual: bool = True
    dropout: float = 0.1
    audio_inputs: tuple[str, ...] = _AUDIO_NAMES  # the audio scalars read (schema.AUDIO_INPUTS names)
    visual_inputs: tuple[str, ...] = _VISUAL_NAMES  # the visual scalars read (schema.VISUAL_SCALARS names)

    def __post_init__(self) -> None:
        for key, columns in (("audio_inputs", schema.AUDIO_INPUTS), ("visual_inputs", schema.VISUAL_SCALARS)):
            object.__setattr__(self, key, schema.named_columns(f"select.{key}", getattr(self, key), columns))

    @property
    def audio_index(self) -> list[int]:
        return [_AUDIO_NAMES.index(n) for n in self.audio_inputs]

    @property
    def visual_index(self) -> list[int]:
        return [_VISUAL_NAMES.index(n) for n in self.visual_inputs]

    @classmethod
    def from_params(cls, params: Params) -> "SelectionConfig":
        return cls(hidden=params.select.hidden, pool_frames=params.select.pool_frames,
                   use_audio=params.use_audio, use_visual=params.use_visual,
                   audio_inputs=params.select.audio_inputs, visual_inputs=params.select.visual_inputs)


class SelectionModel(nn.Module):
    """Keep logits (B, T) for recordings (module docstring)."""

    def __init__(self, config: SelectionConfig):
        super().__init__()
        self.config = config
        h = config.hidden
        # the named audio and visual scalars, two availability flags
        self.scalar_embed = nn.Linear(len(config.audio_inputs) + len(config.visual_inputs) + 2, h)
        # what a scene shows, as its likeness to the kinds of scene of the train videos (k-means centres of their
        # CLIP vectors, fitted on train only: ``fit_scene_kinds``): a few numbers a scene's own noise cannot fill
        self.register_buffer("scene_kinds", torch.zeros(SCENE_KINDS, schema.CLIP_DIM))
        self.clip_embed = nn.Linear(SCENE_KINDS, CLIP_BOTTLENECK)
        self.convs = nn.ModuleList(
            nn.Conv1d(h + CLIP_BOTTLENECK if i == 0 else h, h, kernel_size=9, padding=4 * d, dilation=d)
            for i, d in enumerate(DILATIONS))
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Sequential(nn.Linear(2 * h, h), nn.GELU(), nn.Linear(h, 1))

    def forward(self, audio: torch.Tensor, visual: torch.Tensor, modality_mask: torch.Tensor,
                padding_mask: torch.Tensor) -> torch.Tensor:
        """audio (B, T, 5), visual (B, T, 522), modality_mask (B, T, 2) [audio, visual], padding_mask (B, T)
        True = real frame -> (B, T) keep logits (padding: anything)."""
        cfg = self.config
        mask = modality_mask.float()
        if not cfg.use_audio:
            audio, mask = torch.zeros_like(audio), mask * torch.tensor([0.0, 1.0])
        if not cfg.use_visual:
            visual, mask = torch.zeros_like(visual), mask * torch.tensor([1.0, 0.0])
        real = padding_mask.unsqueeze(-1).float()  # (B, T, 1)
        B, T = padding_mask.shape
        p = cfg.pool_frames
        steps = -(-T // p)
        weight = F.pad(real, (0, 0, 0, steps * p - T)).reshape(B, steps, p, 1).sum(2)  # real frames per step
        clip = F.pad(visual[..., schema.VISUAL_SCALAR_WIDTH :] * real, (0, 0, 0, steps * p - T))
        clip = clip.reshape(B, steps, p, -1).sum(2) / weight.clamp(min=1.0)  # CLIP pooled first: it changes slowly
        clip = self.clip_embed(clip @ self.scene_kinds.T).repeat_interleave(p, dim=1)[:, :T]  # (B, T, CLIP_BOTTLENECK)
        scalars = torch.cat([audio[..., cfg.audio_index], visual[..., cfg.visual_index], mask], dim=-1)
        x = torch.cat([self.drop(F.gelu(self.scalar_embed(scalars))), clip], -1) * real  # (B, T, h + 4)
        x = x.transpose(1, 2)  # (B, C, T)
        for i, conv in enumerate(self.convs):  # non-causal, dilated: +-RECEPTIVE_FRAMES around each frame
            y = F.gelu(conv(x)) * real.transpose(1, 2)
            x = y if i == 0 else x + y
        h = x.transpose(1, 2)  # (B, T, h)
        mean = (h * real).sum(1, keepdim=True) / real.sum(1, keepdim=True).clamp(min=1.0)
        return self.head(self.drop(torch.cat([h, h - mean], -1))).squeeze(-1)  # its difference from the recording's


class SelectionEnsemble(nn.Module):
    """Members trained from their own seeds, read as one: the mean of their keep logits (B, T).

    ``members``: how many fresh members to build (a file's weights are then loaded into them),
    or the trained models themselves (``train_selection``), taken as they are."""

    def __init__(self, config: SelectionConfig, members: int | list[SelectionModel] = 1):
        super().__init__()
        models = [SelectionModel(config) for _ in range(members)] if isinstance(members, int) else list(members)
        if not models:
            raise ValueError(f"a selection ensemble needs at least one member, got {members}")
        self.config = config
        self.members = nn.ModuleList(models)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor, modality_mask: torch.Tensor,
                padding_mask: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(audio, visual, modality_mask, padding_mask) for m in self.members]).mean(0)


@dataclass
class Recording:
    """One video's whole recording as the selection model reads it, and its target."""

    video_id: str
    split: str
    audio: np.ndarray  # (T, 5) float32
    visual: np.ndarray  # (T, 522) float32, CLIP included
    mask: np.ndarray  # (T, 2) bool [audio, visual]
    kept: np.ndarray  # (T,) bool, the target (never an input)

    def __len__(self) -> int:
        return len(self.kept)


def read_recordings(corpus: Corpus | str | Path, splits: tuple[str, ...] = ("train", "val", "test"),
                    content_control: str = "none", seed: int = 0) -> list[Recording]:
    """Every video of `splits`, whole. ``content_control="shuffle"`` pairs each video's kept flags
    with another video of its split's content (the same derangement as the layout's control);
    where the donor is shorter its content is unavailable."""
    corpus = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    out: list[Recording] = []
    for split in splits:
        entries = corpus.split_videos(split)
        content = [corpus.video_arrays(v.video_id) for v in entries]
        donors = np.arange(len(entries))
        if content_control == "shuffle" and len(entries) >= 2:
            donors = derangement(len(entries), seed)
        for v, arrays, d in zip(entries, content, donors):
            kept = np.asarray(arrays["kept"][:, 0], bool)
            src, n = content[d], len(kept)
            m = min(n, len(src["kept"]))
            audio = np.zeros((n, schema.AUDIO_WIDTH), np.float32)
            visual = np.zeros((n, schema.VISUAL_WIDTH), np.float32)
            mask = np.zeros((n, 2), bool)
            mask[:m] = src["mask"][:m, :2]
            audio[:m] = src["audio"][:m]
            visual[:m, : schema.VISUAL_SCALAR_WIDTH] = src["visual"][:m]
            visual[:m, schema.VISUAL_SCALAR_WIDTH :] = src["clip"][:m]
            audio[~mask[:, 0]] = 0.0
            visual[~mask[:, 1]] = 0.0
            out.append(Recording(v.video_id, split, audio, visual, mask, kept))
    return out


def batch_of(recordings: list[Recording]) -> dict[str, torch.Tensor]:
    """Recordings padded into one batch (padding_mask True = real frame)."""
    T = max(len(r) for r in recordings)
    B = len(recordings)
    batch = {
        "audio": torch.zeros(B, T, schema.AUDIO_WIDTH),
        "visual": torch.zeros(B, T, schema.VISUAL_WIDTH),
        "modality_mask": torch.zeros(B, T, 2, dtype=torch.bool),
        "padding_mask": torch.zeros(B, T, dtype=torch.bool),
        "kept": torch.zeros(B, T),
    }
    for i, r in enumerate(recordings):
        n = len(r)
        batch["audio"][i, :n] = torch.from_numpy(r.audio)
        batch["visual"][i, :n] = torch.from_numpy(r.visual)
        batch["modality_mask"][i, :n] = torch.from_numpy(r.mask)
        batch["padding_mask"][i, :n] = True
        batch["kept"][i, :n] = torch.from_numpy(r.kept.astype(np.float32))
    return batch


def _inputs(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return batch["audio"], batch["visual"], batch["modality_mask"], batch["padding_mask"]


def _loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = model(*_inputs(batch))
    real = batch["padding_mask"].float()
    bce = F.binary_cross_entropy_with_logits(logits, batch["kept"], reduction="none")
    return ((bce * real).sum(1) / real.sum(1).clamp(min=1)).mean()  # each recording weighs the same


@torch.no_grad()
def keep_scores(model: nn.Module, recording: Recording) -> np.ndarray:
    """(T,) keep probabilities of one recording, the whole recording read at once (its kept flags unread)."""
    model.eval()
    batch = batch_of([recording])
    return torch.sigmoid(model(*_inputs(batch))[0]).numpy().astype(np.float64)


def params_decoding(params: Params) -> selection.SelectionDecoding:
    """The decoding of ``select`` in params: margins, minimum clip and gap."""
    sp = params.select
    return selection.SelectionDecoding(sp.margin_before_s, sp.margin_after_s, sp.min_clip_s, sp.min_gap_s)


def val_kept_f1(model: nn.Module, recordings: list[Recording], fps: float,
                decoding: selection.SelectionDecoding) -> float:
    """Kept-frame F1 of `recordings` decoded to their true lengths: the figure the checkpoint is chosen on."""
    score = selection.SelectionScore()
    for r in recordings:
        goal = int(r.kept.sum())
        score.add(selection.decode_to_length(keep_scores(model, r), fps, decoding, goal), r.kept, fps)
    return score.kept_f1


def member_seed(seed: int, member: int) -> int:
    """The seed of an ensemble's `member`: the run's own seed for the first (one member is the model of
    before), one drawn from (seed, member) for the others, so no two runs' members share a seed."""
    return seed if member == 0 else int(np.random.SeedSequence([seed, member]).generate_state(1)[0] % 2**31)


def train_selection(recordings: list[Recording], params: Params, fps: float, decoding: selection.SelectionDecoding,
                    progress: bool = True) -> tuple[SelectionEnsemble, dict[str, Any]]:
    """Fit ``select.ensemble`` members on the train recordings, each from its own seed (``member_seed``), and
    average them. Each keeps the epoch with its best val kept-frame F1 at the true lengths (the loss keeps
    falling as the scores grow confident; the ranking is what decoding reads). Returns the ensemble and its
    history: per member the per-epoch train and val loss, val F1 and best epoch; the ensemble's val F1."""
    train = [r for r in recordings if r.split == "train"]
    val = [r for r in recordings if r.split == "val"]
    if not train:
        raise ValueError("the corpus has no train videos to fit the selection model on")
    config = SelectionConfig.from_params(params)
    n = params.select.ensemble
    models, members = [], []
    for k in range(n):
        desc = "train selection" if n == 1 else f"train selection {k + 1}/{n}"
        model, info = _train_member(train, val, config, params, member_seed(params.seed, k), fps, decoding,
                                    desc if progress else None)
        models.append(model)
        members.append(info)
    ensemble = SelectionEnsemble(config, models).eval()
    return ensemble, {"members": members, "best_epochs": [m["best_epoch"] for m in members],
                      "best_val_kept_f1": val_kept_f1(ensemble, val or train, fps, decoding)}


def _train_member(train: list[Recording], val: list[Recording], config: SelectionConfig, params: Params, seed: int,
                  fps: float, decoding: selection.SelectionDecoding,
                  progress: str | None) -> tuple[SelectionModel, dict[str, Any]]:
    """One member from `seed` (``train_selection``); `progress`: the bar's label, None for none."""
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 0x5E1])
    model = SelectionModel(config)
    fit_scene_kinds(model, train, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.select.lr, weight_decay=0.01)
    ema = params.select.ema  # the checkpoints are the weights' moving average over the steps (0: as they are)
    averaged = swa_utils.AveragedModel(model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(ema)) if ema > 0 else None
    scored = model if averaged is None else averaged.module  # what each epoch's checkpoint is
    batch_size = 4
    val_batch = batch_of(val) if val else None
    best, best_f1, history = copy.deepcopy(model.state_dict()), -1.0, []
    for epoch in tqdm(range(params.select.epochs), desc=progress, unit="epoch", disable=progress is None,
                      leave=False):
        model.train()
        order = rng.permutation(len(train))
        total = 0.0
        for lo in range(0, len(order), batch_size):
            batch = batch_of([train[i] for i in order[lo : lo + batch_size]])
            loss = _loss(model, batch)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(model)
            total += float(loss.detach()) * len(batch["kept"])
        scored.eval()
        with torch.no_grad():
            val_loss = float(_loss(scored, val_batch)) if val_batch is not None else total / len(train)
        f1 = val_kept_f1(scored, val or train, fps, decoding)
        history.append({"epoch": epoch, "train_loss": total / len(train), "val_loss": val_loss, "val_kept_f1": f1})
        if f1 > best_f1:
            best, best_f1 = copy.deepcopy(scored.state_dict()), f1
    model.load_state_dict(best)
    model.eval()
    best_epoch = max(history, key=lambda h: h["val_kept_f1"])["epoch"]
    return model, {"history": history, "best_epoch": best_epoch, "best_val_kept_f1": best_f1}


def fit_scene_kinds(model: SelectionModel, recordings: list[Recording], seed: int, iterations: int = 25) -> None:
    """k-means (Lloyd, cosine) of the train recordings' CLIP vectors, once a second, into ``model.scene_kinds``."""
    rows = [r.visual[r.mask[:, 1], schema.VISUAL_SCALAR_WIDTH :][:: 10] for r in recordings if r.split == "train"]
    x = np.concatenate(rows) if rows else np.zeros((0, schema.CLIP_DIM), np.float32)
    x = x[np.linalg.norm(x, axis=1) > 0]
    if len(x) < SCENE_KINDS:
        return  # no CLIP to learn kinds from: the likenesses stay 0
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    rng = np.random.default_rng([seed, 0xC1])
    centres = x[rng.choice(len(x), SCENE_KINDS, replace=False)]
    for _ in range(iterations):
        nearest = np.argmax(x @ centres.T, axis=1)
        for k in range(SCENE_KINDS):
            members = x[nearest == k]
            if len(members):
                c = members.mean(0)
                centres[k] = c / max(np.linalg.norm(c), 1e-12)
    model.scene_kinds.copy_(torch.from_numpy(centres.astype(np.float32)))


def save_selection(path: str | Path, model: SelectionModel | SelectionEnsemble,
                   extra: dict[str, Any] | None = None) -> Path:
    """Atomically; plain tensors and numbers only (``weights_only`` loading). A single model is stored as an
    ensemble of one."""
    if isinstance(model, SelectionModel):
        model = SelectionEnsemble(model.config, [model])
    payload = {
        "selection_version": SELECTION_VERSION,
        "config": dataclasses.asdict(model.config),
        "members": len(model.members),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": dict(extra or {}),
    }
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: the archive name stays the same
        torch.save(payload, fh)
    return path


def load_selection(path: str | Path) -> tuple[SelectionEnsemble, dict[str, Any]]:
    """(model, payload); SelectionError names the file when it is not a selection model of this version."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: selection model not found; run the select stage (dvc repro select)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, random bytes, an unsafe pickle: not a model file
        raise SelectionError(f"{path}: not a trackfusion selection model ({type(exc).__name__})") from exc
    if not isinstance(payload, dict) or payload.get("selection_version") != SELECTION_VERSION:
        raise SelectionError(f"{path}: not a trackfusion selection model of version {SELECTION_VERSION}; "
                             "train it again (dvc repro select)")
    try:
        model = SelectionEnsemble(SelectionConfig(**payload["config"]), int(payload["members"]))
        model.load_state_dict(payload["model_state"])
    except (TypeError, KeyError, ValueError, RuntimeError) as exc:
        raise SelectionError(f"{path}: weights do not fit the stored config ({exc})") from exc
    model.eval()
    return model, payload
