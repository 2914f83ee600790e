"""Generating an edit: teacher-forced prediction and the autoregressive roll-out.

Teacher forcing feeds the true previous frame, as in training; it measures how well a
model continues an edit it is shown. The roll-out is what an editor gets for a new
recording: the model's own previous prediction (active thresholded, asset by argmax)
is the next frame's track input, and no true frame after the first is ever read. Both
decode cuts with the ``cuts.CutDecoding`` the training stage chose (stored in the model
file).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from trackfusion import cuts, schema
from trackfusion.learn.dataset import EditWindowDataset, collate_windows
from trackfusion.learn.metrics import VideoLayoutCuts
from trackfusion.learn.model import OUTPUT_KEYS, STATE_KEYS, WHICH_KEY, decode_frames, decode_states
from trackfusion.learn.toggle import TOGGLE_KEY, apply_toggles, toggle_ready
from trackfusion.params import Params


def video_batch(dataset: EditWindowDataset) -> dict[str, torch.Tensor]:
    """Every video of the dataset as one whole-video window, padded into one batch.

    The dataset must have been built with ``seq_len`` >= the longest video, so that each
    item is a whole video.
    """
    return collate_windows([dataset[i] for i in range(len(dataset))])


def decoding_of(payload: dict[str, Any]) -> cuts.CutDecoding:
    """The cut decoding a training stage chose, from a model file's payload."""
    return cuts.CutDecoding.from_dict(payload.get("extra", {}).get("cut_decoding"))


def rollout_context(params: Params) -> int:
    """Frames of history a roll-out step reads: `predict.context`, at most the windows the model was trained on."""
    return min(params.predict.context, params.model.seq_len)


@torch.no_grad()
def teacher_forced(
    model: torch.nn.Module, dataset: EditWindowDataset, decoding: cuts.CutDecoding, batch_size: int = 16
) -> dict[str, float]:
    """Cut events and layout accuracy of the teacher-forced model over whole videos.

    `dataset` holds the training's evaluation windows (``eval_stride``), so these figures
    are the training stage's test figures, computed by the same `VideoLayoutCuts`.
    """
    video_cuts = VideoLayoutCuts()
    for lo in range(0, len(dataset), batch_size):
        batch = collate_windows([dataset[i] for i in range(lo, min(lo + batch_size, len(dataset)))])
        video_cuts.add(model.forward_batch(batch), batch)
    return video_cuts.score(decoding)


@torch.no_grad()
def rollout(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    context: int,
    decoding: cuts.CutDecoding,
    active_threshold: float = 0.5,
    progress: bool = True,
    param_tolerance: float = 0.0,
    state_confidence: float = 1.0,
    recall_placement: bool = False,
    toggle_threshold: float = 0.5,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Autoregressive roll-out of all videos in the batch at once.

    Frame t's track input is the decoded prediction of frame t-1; the only true frame
    read is frame 0 (the opening layout is given: the input of frame 1). Each step runs
    the causal model on the last `context` frames and keeps its output at frame t. The
    cut head decides causally when the layout changes (`cuts.fire_events`' rule: the
    probability reaches `decoding.threshold` at least `decoding.spacing` frames after
    the previous cut), the track heads what it changes to (`decode_frames`, a track
    active above `active_threshold`).
    A parameter of a track that keeps its layout holds its value unless the model moves
    it by more than `param_tolerance` (in the corpus' normalised units: standard
    deviations; `hold_parameters`). With `recall_placement`, a track that comes back on
    comes back where it last showed in this edit (``recall_placements``). Returns the head
    outputs (B, T, ...) and the decoded frames (B, T, 180).

    ``state_confidence`` < 1, for a model with content-only state heads (``STATE_KEYS``):
    each step is decoded by ``decode_states`` instead: a track whose state head is at
    least this sure shows what the content shows, whatever the previous frame says (a
    wrong state lasts only until the content contradicts it); any other track as above.
    A model without them rolls out as above.

    A model with a toggle head (``trackfusion.learn.toggle``) switches each of its tracks where
    that head's probability reaches ``toggle_threshold`` (at least ``TOGGLE_AHEAD`` frames after its
    last switch), and only there (``apply_toggles``).
    """
    targets = batch["targets"]
    B, T = targets.shape[:2]
    lengths = batch["padding_mask"].sum(dim=1)  # (B,)
    frames = torch.zeros_like(targets)  # (B, T, 180): decoded frames; frame 0 is given
    frames[:, 0] = targets[:, 0]
    inputs = torch.zeros_like(targets)  # (B, T, 180): inputs[:, t] = frame t-1
    last_cut = torch.full((B,), -10**9, dtype=torch.long)
    shown = frames[:, 0].clone()  # (B, 180): each track's placement where it last showed (the given frame's)
    states = state_confidence < 1.0
    toggle = getattr(model, "toggle", None)  # the model's toggle head: the tracks it switches
    outputs: dict[str, torch.Tensor] = {}
    for t in tqdm(range(T), desc="roll-out", unit="frame", disable=not progress, leave=False):
        if t >= 1:
            inputs[:, t] = frames[:, t - 1]
        rows = torch.nonzero(lengths > t).squeeze(1)  # videos still running: no all-padding window
        lo = max(0, t + 1 - context)
        window = {k: v[rows, lo : t + 1] for k, v in batch.items() if v.dim() >= 2 and k != "targets"}
        window["prev_track"] = inputs[rows, lo : t + 1]
        out = model.forward_batch(window)
        # causal: the model saw frames <= t only
        step = {k: out[k][:, -1] for k in (*OUTPUT_KEYS, *STATE_KEYS, WHICH_KEY, TOGGLE_KEY) if k in out}
        for k in step:
            if k not in outputs:
                outputs[k] = torch.zeros((B, T, *step[k].shape[1:]), dtype=step[k].dtype)
            outputs[k][rows, t] = step[k]
        if t >= 1:
            fire = cuts.fires(torch.sigmoid(step["cut"].float()), t - last_cut[rows], decoding.threshold,
                              decoding.spacing)  # fmt: skip
            last_cut[rows[fire]] = t
            if states and "state_active" in step:
                frame = decode_states(step, inputs[rows, t], fire, state_confidence, active_threshold)
            else:
                one = {k: v.unsqueeze(1) for k, v in step.items()}
                frame = decode_frames(one, active_threshold, inputs[rows, t : t + 1], fire.unsqueeze(1))[:, 0]
            if toggle is not None and TOGGLE_KEY in step:
                ready = toggle_ready(inputs[rows, lo : t + 1], toggle.tracks)
                frame = apply_toggles(frame, inputs[rows, t], step, toggle.tracks, toggle_threshold, ready)
            frame = hold_parameters(frame, frames[rows, t - 1], param_tolerance)
            if recall_placement:
                frame, shown[rows] = recall_placements(frame, frames[rows, t - 1], shown[rows])
            frames[rows, t] = frame
    return outputs, frames


def recall_placements(frame: torch.Tensor, prev: torch.Tensor, shown: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(B, 180) decoded frame with each track that switches on placed where it last showed (`shown`, (B, 180)),
    and `shown` updated with every track the frame shows.

    An editor's face cam, title and insert come back to the corner, height and spot they had
    in this edit: their placement is the video's style, which no content shows. The heads
    predict a placement as a change from the previous frame, so a track that was off had
    none to change from, and rolled out the face cam came back in the middle of the
    picture (position error 155 px against the ceiling's 0 on test). A track never shown
    before keeps the heads' placement.
    """
    B = frame.shape[0]
    now, before, last = (x.reshape(B, -1, schema.NUM_TRACK_PARAMS) for x in (frame, prev, shown))
    back = (now[..., 0] > 0.5) & (before[..., 0] <= 0.5) & (last[..., 0] > 0.5)  # (B, N)
    placed = now.clone()
    placed[..., 2:] = torch.where(back.unsqueeze(-1), last[..., 2:], now[..., 2:])
    on = (placed[..., 0] > 0.5).unsqueeze(-1)
    return placed.reshape(B, -1), torch.where(on, placed, last).reshape(B, -1)


def hold_parameters(frame: torch.Tensor, prev: torch.Tensor, tolerance: float) -> torch.Tensor:
    """(B, 180) decoded frame with each parameter of a track whose layout (active, asset) is
    unchanged from `prev` kept at its previous value where it moved by <= `tolerance`.

    The heads predict parameters as a change from the previous frame, so fed their own
    output they drift a little every step; an editor's parameters stand still between
    moves (a punch-in, a new position). Without the hold, the drift alone cut an exported
    edit into 150 clips on a track whose truth has 19.
    """
    if tolerance <= 0:
        return frame
    B = frame.shape[0]
    now, before = frame.reshape(B, -1, schema.NUM_TRACK_PARAMS), prev.reshape(B, -1, schema.NUM_TRACK_PARAMS)
    same = (now[..., 0] > 0.5) & (before[..., 0] > 0.5) & (now[..., 1].round() == before[..., 1].round())  # (B, N)
    keep = same.unsqueeze(-1) & ((now[..., 2:] - before[..., 2:]).abs() <= tolerance)  # (B, N, 7)
    held = now.clone()
    held[..., 2:] = torch.where(keep, before[..., 2:], now[..., 2:])
    return held.reshape(B, -1)


def rollout_cuts(frames: dict[str, np.ndarray]) -> tuple[cuts.CutScore, int, int]:
    """Cut events of rolled-out timelines against the truth, and frames with the true layout."""
    score = cuts.CutScore()
    same = total = 0
    for vid, f in frames.items():
        score.add(cuts.video_cut_events(f["rollout"]), cuts.video_cut_events(f["truth"]), len(f["truth"]), vid)
        given = np.arange(len(f["truth"])) > 0  # frame 0 is given, not predicted (as teacher-forced)
        agree, counted = cuts.layout_agreement(cuts.layout(f["rollout"]), cuts.layout(f["truth"]), given)
        same, total = same + agree, total + counted
    return score, same, total
