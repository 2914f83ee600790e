"""The one cut score: events, causal firing, one-to-one matching over whole videos, VideoLayoutCuts."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies.model import edit_outputs
from tests.strategies.reference import ref_cut, ref_max_matching
from trackfusion import cuts, schema
from trackfusion.learn.dataset import eval_stride, first_scored, window_starts
from trackfusion.learn.metrics import VideoLayoutCuts

torch.set_num_threads(1)


def timeline(assets: list[int]) -> np.ndarray:
    """(T, 180) frames: track 0 active with the given asset per frame (-1 = inactive)."""
    t = np.zeros((len(assets), schema.TRACK_WIDTH), np.float32)
    for i, a in enumerate(assets):
        if a >= 0:
            t[i, 0], t[i, 1] = 1.0, a
    return t


# --- the definition ------------------------------------------------------------------
@given(inp=edit_outputs(max_classes=3))
def test_cut_flags_match_the_spec_definition(inp) -> None:
    _, targets, _ = inp
    prev = torch.roll(targets, 1, dims=1)
    flags = cuts.cut_flags(targets, prev)
    flags_np = cuts.cut_flags(targets.numpy(), prev.numpy())
    for b in range(targets.shape[0]):
        for t in range(targets.shape[1]):
            expected = ref_cut(targets[b, t].tolist(), prev[b, t].tolist())
            assert bool(flags[b, t]) == expected == bool(flags_np[b, t])


def test_a_cut_announced_over_three_frames_is_one_event() -> None:
    flags = np.zeros(30, bool)
    flags[10:13] = True  # a state wrong for three frames
    assert cuts.cut_events(flags).tolist() == [10]
    assert cuts.match_events(cuts.cut_events(flags), [11]) == (1, 0, 0)


def test_a_timeline_shifted_by_one_frame_scores_one() -> None:
    truth = timeline([0] * 10 + [4] * 10 + [-1] * 10 + [5] * 10)
    early = np.concatenate([truth[1:], truth[-1:]])  # every cut one frame early
    true_events, pred_events = cuts.video_cut_events(truth), cuts.video_cut_events(early)
    assert true_events.tolist() == [10, 20, 30] and pred_events.tolist() == [9, 19, 29]
    assert cuts.score_events([(pred_events, true_events)]).f1 == 1.0


@given(t=st.integers(1, 200), tol=st.integers(0, 8))
def test_match_respects_the_tolerance(t: int, tol: int) -> None:
    assert cuts.match_events([t + tol], [t], tol) == (1, 0, 0)
    assert cuts.match_events([t + tol + 1], [t], tol) == (0, 1, 1)


@given(pred=st.lists(st.integers(0, 80), unique=True, max_size=15),
       true=st.lists(st.integers(0, 80), unique=True, max_size=15), tol=st.integers(0, 6))  # fmt: skip
def test_match_events_is_a_maximum_one_to_one_matching(pred, true, tol) -> None:
    tp, fp, fn = cuts.match_events(sorted(pred), sorted(true), tol)
    assert tp == ref_max_matching(sorted(pred), sorted(true), tol)
    assert tp + fp == len(pred) and tp + fn == len(true)


def test_videos_never_match_across_each_other() -> None:
    score = cuts.CutScore(5)
    score.add([98], [], video_id="a")  # a cut at the end of one video ...
    score.add([], [1], video_id="b")  # ... and one at the start of the next
    assert (score.tp, score.fp, score.fn) == (0, 1, 1)
    assert score.figures()["cut_f1"] == 0.0


def test_score_over_no_videos_is_not_a_perfect_result() -> None:
    assert cuts.CutScore().figures()["cut_f1"] is None


# --- causal firing -------------------------------------------------------------------
probs = st.lists(st.floats(0, 1), min_size=0, max_size=120).map(np.array)


@given(p=probs, thr=st.floats(0.01, 1.0), spacing=st.integers(1, 12))
def test_property_fired_events_are_above_threshold_and_spaced(p, thr, spacing) -> None:
    events = cuts.fire_events(p, thr, spacing)
    assert all(p[e] >= thr for e in events)
    assert all(np.diff(events) >= spacing)
    # every frame above threshold is within `spacing` of an event at or before it
    for t in np.flatnonzero(p >= thr):
        assert any(0 <= t - e < spacing for e in events)


@given(p=probs, thr=st.floats(0.01, 1.0), spacing=st.integers(1, 12), cut=st.integers(0, 120))
def test_property_firing_is_causal(p, thr, spacing, cut) -> None:
    """Events up to frame t depend on probabilities up to t only, as in a roll-out."""
    head = cuts.fire_events(p[:cut], thr, spacing)
    full = cuts.fire_events(p, thr, spacing)
    assert full[full < cut].tolist() == head.tolist()


@given(p=probs, spacing=st.integers(1, 12))
def test_property_spacing_one_fires_every_frame_above_threshold(p, spacing) -> None:
    assert cuts.fire_events(p, 0.5, 1).tolist() == np.flatnonzero(p >= 0.5).tolist()
    assert len(cuts.fire_events(p, 0.5, spacing)) <= len(cuts.fire_events(p, 0.5, 1))


def test_tune_firing_finds_the_decoding_of_a_clear_signal() -> None:
    true = [np.array([10, 40, 70])]
    p = np.full(100, 0.1)
    p[[10, 11, 12, 40, 41, 70]] = 0.8
    best = cuts.tune_firing([p], true)
    assert best["cut_f1"] == 1.0 and best["threshold"] <= 0.8 and best["spacing"] >= 3


# --- whole videos from windows -------------------------------------------------------
def windows_of(track: np.ndarray, probs_: np.ndarray, seq_len: int, context: int = 0) -> list[dict[str, torch.Tensor]]:
    """Evaluation windows of one video, as the dataset gives them, with model outputs.

    Window outputs at frames before ``scored`` are garbage (1 - p): they must never count.
    """
    out = []
    starts = window_starts(len(track), seq_len, eval_stride(seq_len, context))
    for s, first in zip(starts.tolist(), first_scored(starts, seq_len).tolist()):
        n = min(seq_len, len(track) - s)
        scored = torch.arange(n) >= first
        window_p = np.where(scored.numpy(), probs_[s : s + n], 1 - probs_[s : s + n])
        targets = torch.from_numpy(track[s : s + n])
        prev = torch.from_numpy(track[s - 1 : s + n - 1] if s else np.concatenate([np.zeros_like(track[:1]), track[: n - 1]]))
        has_prev = torch.ones(n, dtype=torch.bool)
        has_prev[0] = s > 0
        B, N = 1, schema.NUM_TRACKS
        logits = torch.logit(torch.from_numpy(window_p).clamp(1e-4, 1 - 1e-4)).float()
        outputs = {"active": torch.where(prev.reshape(n, N, 9)[..., 0] > 0.5, 5.0, -5.0)[None],
                   "asset": torch.nn.functional.one_hot(prev.reshape(n, N, 9)[..., 1].long(), 10).float()[None] * 5,
                   "scale": torch.zeros(B, n, N), "position": torch.zeros(B, n, N, 2),
                   "crop": torch.zeros(B, n, N, 4), "cut": logits[None]}  # fmt: skip
        batch = {"targets": targets[None], "prev_track": prev[None], "padding_mask": torch.ones(1, n, dtype=torch.bool),
                 "has_prev": has_prev[None], "scored": scored[None], "video_index": torch.tensor([0]),
                 "start": torch.tensor([s])}
        out.append((outputs, batch))
    return out


def test_a_cut_across_a_window_boundary_counts_once() -> None:
    truth = timeline([0] * 15 + [4] * 15)  # one cut at frame 15
    p = np.zeros(30)
    p[14:17] = 0.9  # announced over frames 14-16, across the boundary of 16-frame windows
    vc = VideoLayoutCuts()
    for outputs, batch in reversed(windows_of(truth, p, 16)):  # window order must not matter
        vc.add(outputs, batch)
    figures = vc.score(cuts.CutDecoding(0.5, 5))
    assert figures["true_cuts"] == 1 and figures["pred_cuts"] == 1 and figures["cut_f1"] == 1.0
    # with spacing 1 the three frames fire three times: two of them are false cuts
    assert vc.score(cuts.CutDecoding(0.5, 1))["pred_cuts"] == 3
    # frame 14 switched one frame early and frame 15 inside the spacing keeps the old layout: 2 of 29 wrong
    assert figures["layout_accuracy"] == pytest.approx(27 / 29)


@pytest.mark.parametrize("context", [2, 5, 8])
def test_overlapping_windows_score_each_frame_once(context: int) -> None:
    truth = timeline([0] * 15 + [4] * 10 + [5] * 15)  # cuts at frames 15 and 25
    p = np.zeros(40)
    p[[15, 25, 33]] = 0.9  # two hits, one false cut
    tiled, overlapped = VideoLayoutCuts(), VideoLayoutCuts()
    for outputs, batch in windows_of(truth, p, 16):
        tiled.add(outputs, batch)
    for outputs, batch in windows_of(truth, p, 16, context):
        overlapped.add(outputs, batch)
    assert overlapped.score(cuts.CutDecoding(0.5, 1)) == tiled.score(cuts.CutDecoding(0.5, 1))
    figures = overlapped.score(cuts.CutDecoding(0.5, 1))
    assert figures["pred_cuts"] == 3 and figures["true_cuts"] == 2
    assert sum(len(d["prob"]) for d in overlapped.videos().values()) == 40


def test_never_a_cut_on_a_video_first_frame() -> None:
    truth = timeline([0] * 20)
    p = np.zeros(20)
    p[0] = 1.0
    vc = VideoLayoutCuts()
    for outputs, batch in windows_of(truth, p, 8):
        vc.add(outputs, batch)
    assert vc.score(cuts.CutDecoding(0.5, 1))["pred_cuts"] == 0 and vc.score(cuts.CutDecoding(0.5, 1))["cut_f1"] == 1.0
