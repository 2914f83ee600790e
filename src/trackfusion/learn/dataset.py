"""Training windows over a memory-mapped corpus, their collation and the DataLoaders.

A window is `seq_len` consecutive frames of one video's edit: its kept frames in order
(``Corpus.edit_rows``), so a frame's previous frame is the previous kept frame and a
dropped frame is neither input nor target. All windows are listed once at
construction as three index arrays (video, start, length); `__getitem__` only slices
the memory-mapped arrays of `trackfusion.data.corpus.Corpus`, so an epoch never parses or
re-aligns a file.

The learning task (SPEC 5) predicts frame t's track state from content <= t and track
states <= t-1, so the `prev_track` input of a window starting at frame s is the video's
frames s-1 .. s+T-2 (zeros before the video's first frame) and `targets` are frames
s .. s+T-1.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from trackfusion.learn import distributed as dist_utils
from trackfusion import schema
from trackfusion.data.corpus import Corpus
from trackfusion.params import CONTENT_CONTROLS, Params

log = logging.getLogger(__name__)

#: items' keys that have a time axis (padded by `collate_windows`)
TIME_KEYS = ("audio", "visual", "prev_track", "targets", "padding_mask", "modality_mask", "has_prev", "prev_true",
             "scored")
#: tracks the wrong layouts of `track_noise` are drawn on, and the asset each shows when switched on
NOISE_ASSETS = schema.TRACK_ASSETS


def corrupt_layout(track: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of a window's track input (T, 180) with one track's layout wrong over a stretch.

    In a roll-out the model reads its own earlier decisions, and a wrong one persists
    (a wrong asset, a face cam left on) until its next cut. Teacher forcing never shows
    such a state, so the model learns to "repair" any disagreement with the content by
    cutting at once, which in a roll-out means cutting again and again. Training on
    windows with a wrong stretch, against the true targets, teaches it that the
    content, not the disagreement, says when to cut.
    """
    out = track.copy()
    n = len(out)
    k = int(rng.integers(0, len(NOISE_ASSETS)))
    a = int(rng.integers(0, n))
    b = min(n, a + int(rng.integers(5, max(n, 6))))
    base = k * schema.NUM_TRACK_PARAMS
    act, asset = base + schema.param_index("active"), base + schema.param_index("asset_id")
    seg = out[a:b]
    if k == 0:  # the main footage shows another source
        seg[:, asset] = rng.choice([c for c in NOISE_ASSETS[0] if c != int(round(float(seg[0, asset])))])
    else:  # switched the other way
        on = seg[:, act] > 0.5
        seg[:, base : base + schema.NUM_TRACK_PARAMS] = np.where(on[:, None], 0.0, seg[:, base : base + schema.NUM_TRACK_PARAMS])
        seg[~on, act] = 1.0
        seg[~on, asset] = rng.choice(NOISE_ASSETS[k])
    return out


def previous_frames(video_track: np.ndarray, start: int, n: int) -> np.ndarray:
    """The model's track input for frames start .. start+n-1 of a video: each frame's previous
    frame (video rows start-1 .. start+n-2), zeros before the video's first frame. (n, W) float32."""
    out = np.zeros((n, video_track.shape[1]), dtype=np.float32)
    if start > 0:
        out[:] = video_track[start - 1 : start + n - 1]
    else:
        out[1:] = video_track[: n - 1]
    return out


def window_starts(length: int, seq_len: int, stride: int) -> np.ndarray:
    """Start frames of the windows of one video of `length` frames.

    Windows start every `stride` frames and the last one ends at the video's last frame
    (no frame is dropped at the end). With overlapping windows (stride < seq_len) the
    last window is moved back to be a full one; with tiling windows (stride = seq_len,
    the evaluation) it is a short one, so every frame is in exactly one window. A video
    shorter than `seq_len` gives one short window.
    """
    if seq_len < 1 or stride < 1:
        raise ValueError(f"seq_len and stride must be >= 1, got seq_len={seq_len}, stride={stride}")
    if length <= seq_len:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, length - seq_len + 1, stride, dtype=np.int64)
    if starts[-1] + seq_len < length:
        following = starts[-1] + stride
        tail = length - seq_len if stride < seq_len or following >= length else following
        starts = np.append(starts, tail)
    return starts


def first_scored(starts: np.ndarray, seq_len: int) -> np.ndarray:
    """Per window of one video, the first position no earlier window holds.

    Evaluation scores each frame once, in the first window that holds it after the
    windows before: with overlapping evaluation windows every frame but a video's first
    ones is scored with the overlap as its history, as a roll-out sees it.
    """
    out = np.zeros(len(starts), dtype=np.int64)
    out[1:] = np.maximum(starts[:-1] + seq_len - starts[1:], 0)
    return out


def eval_stride(seq_len: int, context: int) -> int:
    """Stride of evaluation windows that give every scored frame >= `context` frames of history."""
    return max(seq_len - min(max(context, 0), seq_len // 2), 1)


def derangement(n: int, seed: int) -> np.ndarray:
    """A permutation of range(n) with no fixed point, deterministic from the seed (n >= 2).

    A random order closed into one cycle: each element maps to the next in the order.
    """
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 elements, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n, dtype=np.int64)
    out[order] = np.roll(order, -1)
    return out


class EditWindowDataset(Dataset):
    """Windows of `seq_len` frames (every `stride` frames) of the videos of one split.

    content_control="shuffle" pairs each video's track with another video's audio,
    visual and their masks (a derangement of the split's videos, from `seed`): the
    control run of SPEC 7. Where the donor video is shorter, its content is
    unavailable (mask False, zeros).
    """

    def __init__(
        self,
        corpus: Corpus | str | Path,
        split: str,
        seq_len: int,
        stride: int,
        content_control: str = "none",
        seed: int = 0,
        track_noise: float = 0.0,
    ):
        if content_control not in CONTENT_CONTROLS:
            raise ValueError(f"content_control is {content_control!r}; allowed values: {', '.join(CONTENT_CONTROLS)}")
        self.corpus = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
        self.split = split
        self.seq_len = seq_len
        self.stride = stride
        self.content_control = content_control
        self.track_noise = track_noise
        self.videos = self.corpus.split_videos(split)
        self.rows = [self.corpus.edit_rows(v.video_id) for v in self.videos]  # corpus rows of each edit's frames
        self.lengths = np.array([len(r) for r in self.rows], dtype=np.int64)

        # donor[i]: the video whose content (audio, visual, their masks) video i sees; -1 = none
        n = len(self.videos)
        self.donor = np.arange(n, dtype=np.int64)
        if content_control == "shuffle":
            if n >= 2:
                self.donor = derangement(n, seed)
            elif n == 1:
                log.warning("split %s has one video: shuffle control leaves it with no content", split)
                self.donor[:] = -1

        nonempty = [i for i in range(n) if self.lengths[i] > 0]
        per_video = [window_starts(int(self.lengths[i]), seq_len, stride) for i in nonempty]
        self.window_video = np.concatenate([np.full(len(s), i, dtype=np.int64) for i, s in zip(nonempty, per_video)]
                                           or [np.zeros(0, np.int64)])
        self.window_start = np.concatenate(per_video or [np.zeros(0, np.int64)])
        self.window_scored = np.concatenate([first_scored(st, seq_len) for st in per_video] or [np.zeros(0, np.int64)])
        self.window_length = np.minimum(seq_len, self.lengths[self.window_video] - self.window_start)
        self.frames = int(self.window_length.sum())

        self._audio = self.corpus.array("audio")
        self._visual = self.corpus.array("visual")
        self._clip = self.corpus.array("clip")
        self._track = self.corpus.array("track")
        self._mask = self.corpus.array("mask")

    def __len__(self) -> int:
        return len(self.window_video)

    @property
    def video_ids(self) -> list[str]:
        return [v.video_id for v in self.videos]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        v = int(self.window_video[index])
        s = int(self.window_start[index])
        n = int(self.window_length[index])
        rows = self.rows[v][s : s + n]  # corpus rows of the window's frames, in edit order

        targets = np.asarray(self._track[rows], dtype=np.float32)  # (T, 180), a copy off the memmap
        first = max(s - 1, 0)
        track = previous_frames(self._track[self.rows[v][first : s + n]], s - first, n)  # frame t: state of t-1
        mask = np.zeros((n, 3), dtype=bool)
        mask[:, 2] = self._mask[rows, 2]

        audio = np.zeros((n, schema.AUDIO_WIDTH), dtype=np.float32)
        visual = np.zeros((n, schema.VISUAL_WIDTH), dtype=np.float32)
        d = int(self.donor[v])
        if d >= 0:
            m = max(0, min(n, int(self.lengths[d]) - s))  # frames the donor has for this window
            c = self.rows[d][s : s + m]
            mask[:m, :2] = self._mask[c, :2]
            audio[:m] = self._audio[c]
            visual[:m, : schema.VISUAL_SCALAR_WIDTH] = self._visual[c]
            visual[:m, schema.VISUAL_SCALAR_WIDTH :] = self._clip[c]  # float16 -> float32
            # unavailable content is zero whatever the corpus holds there (SPEC property 31)
            audio[~mask[:, 0]] = 0.0
            visual[~mask[:, 1]] = 0.0

        scored = np.arange(n) >= int(self.window_scored[index])  # frames no earlier window holds
        has_prev = np.ones(n, dtype=bool)
        if s == 0:
            has_prev[0] = False  # a video's first frame has no previous frame to cut from
        noisy = {}
        if self.track_noise > 0:  # the loss reads targets against the true previous frame, `prev_true`
            noisy["prev_true"] = torch.from_numpy(track)
            if n > 1 and float(torch.rand(())) < self.track_noise:
                # drawn from torch's seeded generator, so a resumed run draws the same
                track = corrupt_layout(track, np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()))))
        return {
            **noisy,
            "audio": torch.from_numpy(audio),
            "visual": torch.from_numpy(visual),
            "prev_track": torch.from_numpy(track),
            "targets": torch.from_numpy(targets),
            "padding_mask": torch.ones(n, dtype=torch.bool),
            "modality_mask": torch.from_numpy(mask),
            "has_prev": torch.from_numpy(has_prev),
            "scored": torch.from_numpy(scored),
            "video_index": torch.tensor(v, dtype=torch.long),
            "start": torch.tensor(s, dtype=torch.long),
        }


def collate_windows(items: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack windows into a batch, padding to the longest with zeros (padding_mask False)."""
    if not items:
        raise ValueError("collate_windows needs at least one window")
    lengths = [len(it["targets"]) for it in items]
    t_max = max(lengths)
    batch: dict[str, torch.Tensor] = {}
    for key, first in items[0].items():
        if key not in TIME_KEYS or all(n == t_max for n in lengths):
            batch[key] = torch.stack([it[key] for it in items])  # nothing to pad
            continue
        out = first.new_zeros((len(items), t_max, *first.shape[1:]))  # (B, T_max, ...)
        for i, (it, n) in enumerate(zip(items, lengths)):
            out[i, :n] = it[key]
        batch[key] = out
    return batch


def _loader(
    dataset: EditWindowDataset,
    batch_size: int,
    train: bool,
    seed: int,
    distributed: bool,
    num_workers: int,
    pin_memory: bool,
) -> DataLoader:
    sampler = None
    generator = None
    if distributed and dist_utils.is_distributed():
        world = dist_utils.world_size()
        rank = dist_utils.rank()
        if train:
            # equal batch counts on every rank (DDP needs them); reshuffled by set_epoch
            sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed)
        else:
            sampler = dist_utils.ShardSampler(len(dataset), world, rank)  # each window once, no padding
        batch_size = max(1, batch_size // world)
    elif train and len(dataset) > 0:  # (an empty split cannot be shuffled)
        generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=generator is not None,
        sampler=sampler,
        generator=generator,
        collate_fn=collate_windows,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )


def create_dataloaders(
    corpus_dir: str | Path,
    params: Params,
    splits: Iterable[str] = ("train", "val", "test"),
    multimodal: bool = False,
    distributed: bool = False,
    evaluation: bool = False,
) -> dict[str, DataLoader]:
    """One DataLoader per split. Train windows every `train.stride` frames, shuffled by
    a generator seeded from `params.seed`; eval windows overlap by `predict.context`
    frames (at most half a window) and each frame is scored once (``scored``), with
    that much history, as the roll-out sees it. ``evaluation`` gives every split, train
    included, eval windows. Under DDP the global batch `train.batch_size` is split
    across ranks."""
    corpus = Corpus(corpus_dir)
    seq_len = params.model.seq_len
    control = params.content_control if multimodal else "none"
    on_cuda = torch.cuda.is_available() and params.train.device != "cpu"
    loaders = {}
    for split in splits:
        train = split == "train" and not evaluation
        dataset = EditWindowDataset(
            corpus, split, seq_len, params.train.stride if train else eval_stride(seq_len, params.predict.context),
            content_control=control, seed=params.seed,
            track_noise=params.train.track_noise if train else 0.0,
        )
        if len(dataset) == 0:
            log.warning("split %s of %s has no videos", split, corpus_dir)
        loaders[split] = _loader(
            dataset,
            params.train.batch_size,
            train,
            params.seed,
            distributed,
            params.train.num_workers if on_cuda else 0,
            pin_memory=on_cuda,
        )
    return loaders


def describe(loaders: dict[str, DataLoader]) -> dict[str, Any]:
    """Windows and frames per split, for logs and run info."""
    out = {}
    for split, loader in loaders.items():
        ds = loader.dataset
        out[split] = {"videos": len(ds.videos), "windows": len(ds), "frames": ds.frames}
    return out
