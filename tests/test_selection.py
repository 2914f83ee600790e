"""Kept segments from keep scores under a target length (shape, decode_to_length, the overshoot bound) and
the selection score (kept frames, jump-cut boundaries, duration)."""
from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from trackfusion import selection
from trackfusion.selection import SelectionDecoding, SelectionScore, smooth

fps_values = st.sampled_from([10, 25, 30])
decodings = st.builds(
    SelectionDecoding,
    margin_before_s=st.floats(0, 1), margin_after_s=st.floats(0, 1),
    min_clip_s=st.floats(0, 3), min_gap_s=st.floats(0, 2),
)  # fmt: skip
levels = st.one_of(st.sampled_from([0.0, 0.5, 1.0, float("nan")]), st.floats(-1, 1))


@st.composite
def keep_scores(draw, max_runs: int = 12, max_run: int = 60) -> np.ndarray:
    """Runs of a score (ties), salted or not with per-frame scores: up to a few hundred frames."""
    runs = draw(st.lists(st.tuples(st.integers(1, max_run), levels), max_size=max_runs))
    scores = np.repeat([level for _, level in runs], [length for length, _ in runs]).astype(np.float64)
    if draw(st.booleans()):
        salt = draw(st.lists(st.tuples(st.integers(0, 10**6), levels), max_size=40))
        for i, level in salt:
            if len(scores):
                scores[i % len(scores)] = level
    return scores


@st.composite
def masks(draw, max_runs: int = 16, max_run: int = 40) -> np.ndarray:
    """Alternating runs of True and False (edits are runs, not salt and pepper)."""
    runs = draw(st.lists(st.integers(1, max_run), max_size=max_runs))
    first = draw(st.booleans())
    return np.repeat([(i % 2 == 0) == first for i in range(len(runs))], runs).astype(bool)


def ref_shape(mask: np.ndarray, fps: float, decoding: SelectionDecoding) -> np.ndarray:
    """shape, frame by frame: widen, fill interior gaps shorter than min_gap, drop runs shorter than min_clip."""
    before, after, min_clip, min_gap = decoding.frames(fps)
    n = len(mask)
    out = [False] * n
    for u in range(n):
        if mask[u]:
            for t in range(max(0, u - before), min(n, u + after + 1)):
                out[t] = True
    kept = [t for t in range(n) if out[t]]
    for left, right in zip(kept, kept[1:]):
        if right - left - 1 < min_gap:
            for t in range(left + 1, right):
                out[t] = True
    t = 0
    while t < n:
        if out[t]:
            end = t
            while end < n and out[end]:
                end += 1
            if end - t < min_clip:
                out[t:end] = [False] * (end - t)
            t = end
        else:
            t += 1
    return np.asarray(out, bool)


def runs_and_gaps(kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lengths of the kept runs and of the gaps between two kept runs."""
    segs = selection.segments(kept)
    return segs[:, 1] - segs[:, 0], segs[1:, 0] - segs[:-1, 1]


# --- segments, flags, boundaries --------------------------------------------------------------------------------
@given(mask=masks())
def test_segments_and_flags_round_trip_and_segments_are_sorted_disjoint_runs(mask) -> None:
    segs = selection.segments(mask)
    assert segs.dtype == np.int64 and segs.shape == (len(segs), 2)
    assert (segs[:, 0] < segs[:, 1]).all() and (segs[1:, 0] > segs[:-1, 1]).all()  # non-empty, apart, sorted
    assert np.array_equal(selection.flags(segs, len(mask)), mask)


def test_segments_flags_and_boundaries_on_a_hand_example() -> None:
    kept = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 1], bool)
    assert selection.segments(kept).tolist() == [[1, 3], [5, 6], [7, 10]]
    assert selection.boundaries(kept).tolist() == [1, 3, 5, 6, 7]  # both edges of each dropped stretch
    assert selection.boundaries(np.ones(5, bool)).tolist() == []  # a video's ends are not cuts
    assert selection.flags([[0, 2], [1, 4], [6, 6]], 7).tolist() == [1, 1, 1, 1, 0, 0, 0]  # overlaps, empty
    with pytest.raises(ValueError):
        selection.flags([[3, 8]], 7)


def test_empty_all_false_all_true_and_a_video_shorter_than_min_clip() -> None:
    dec = SelectionDecoding(margin_before_s=0.5, margin_after_s=0.5, min_clip_s=3.0, min_gap_s=1.0)
    empty = np.zeros(0, bool)
    assert selection.segments(empty).shape == (0, 2) and selection.flags(np.zeros((0, 2)), 0).shape == (0,)
    assert selection.boundaries(empty).shape == (0,) and selection.shape(empty, 10, dec).shape == (0,)
    assert selection.decode_to_length(np.zeros(0), 10, dec, 5).shape == (0,)
    assert not selection.shape(np.zeros(50, bool), 10, dec).any()
    assert selection.shape(np.ones(50, bool), 10, dec).all()
    short = np.ones(29, bool)  # 2.9 s < min_clip: nothing can be kept, whatever the target
    assert not selection.shape(short, 10, dec).any()
    assert not any(selection.decode_to_length(np.linspace(0, 1, 29), 10, dec, t).any() for t in (-1, 0, 10, 29, 99))


# --- shape ---------------------------------------------------------------------------------------------------
def test_shape_on_hand_examples_at_each_threshold() -> None:
    def shaped(n: int, *segs: tuple[int, int], dec: SelectionDecoding) -> list[list[int]]:
        return selection.segments(selection.shape(kept_flags(n, *segs), 10, dec)).tolist()

    dec = SelectionDecoding(min_clip_s=0.5, min_gap_s=0.3)  # 5 frames, 3 frames at 10 fps
    assert shaped(30, (0, 5), (8, 13), dec=dec) == [[0, 5], [8, 13]]  # a gap of min_gap stays
    assert shaped(30, (0, 5), (7, 12), dec=dec) == [[0, 12]]  # one frame shorter is filled
    assert shaped(30, (3, 8), (20, 24), dec=dec) == [[3, 8]]  # a run of min_clip stays, one frame shorter goes
    assert shaped(30, (1, 3), (4, 6), dec=dec) == [[1, 6]]  # filled first, then long enough
    assert shaped(30, (2, 28), dec=dec) == [[2, 28]]  # the video's ends are not gaps
    margins = SelectionDecoding(margin_before_s=0.2, margin_after_s=0.4, min_clip_s=0.0, min_gap_s=0.0)
    assert shaped(30, (1, 2), (10, 12), (28, 29), dec=margins) == [[0, 6], [8, 16], [26, 30]]  # clipped to the video


@given(mask=masks(), fps=fps_values, dec=decodings)
def test_shape_matches_the_frame_by_frame_reference(mask, fps, dec) -> None:
    assert np.array_equal(selection.shape(mask, fps, dec), ref_shape(mask, fps, dec))


@given(mask=masks(), extra=st.lists(st.integers(0, 10_000), max_size=12), fps=fps_values, dec=decodings)
def test_shape_is_monotone_and_one_added_frame_changes_the_total_by_at_most_the_overshoot_bound(
        mask, extra, fps, dec) -> None:  # fmt: skip
    if len(mask) == 0:
        return
    bound = selection.overshoot_bound(fps, dec)
    grown = mask.copy()
    for u in extra:
        bigger = grown.copy()
        bigger[u % len(mask)] = True
        before, after = selection.shape(grown, fps, dec), selection.shape(bigger, fps, dec)
        assert not (before & ~after).any()  # superset in -> superset out
        assert 0 <= after.sum() - before.sum() <= bound
        grown = bigger
    assert not (selection.shape(mask, fps, dec) & ~selection.shape(grown, fps, dec)).any()


@pytest.mark.parametrize("fps, dec", [
    (10, SelectionDecoding(margin_before_s=0.2, margin_after_s=0.1, min_clip_s=1.0, min_gap_s=0.5)),
    (25, SelectionDecoding(margin_before_s=0.0, margin_after_s=0.0, min_clip_s=3.0, min_gap_s=1.0)),
    (30, SelectionDecoding(margin_before_s=0.5, margin_after_s=0.0, min_clip_s=2.0, min_gap_s=0.0)),
])  # fmt: skip
def test_overshoot_bound_is_reached(fps, dec) -> None:
    """Runs of min_clip - 1 on each side of u, each min_gap - 1 from u's margins: all dropped without u,
    one run with it. The bound is tight, so it cannot be loosened silently either."""
    before, after, min_clip, min_gap = dec.frames(fps)
    fill = max(min_gap - 1, 0)
    side = min_clip - 1  # each side run after widening; its mask run is side - before - after frames
    assert side - before - after >= 1
    pad = before + after + 5 + min_gap  # the video's ends stay clear of everything
    n = 2 * pad + 2 * side + 2 * fill + before + after + 1
    mask = np.zeros(n, bool)
    mask[pad + before: pad + side - after] = True  # widens to [pad, pad + side)
    u = pad + side + fill + before  # widens to [u - before, u + after]
    mask[u + after + 1 + fill + before: u + after + 1 + fill + side - after] = True
    assert selection.shape(mask, fps, dec).sum() == 0
    mask[u] = True
    assert selection.shape(mask, fps, dec).sum() == selection.overshoot_bound(fps, dec) == n - 2 * pad


# --- decode_to_length ------------------------------------------------------------------------------------------
@given(scores=keep_scores(), fps=fps_values, dec=decodings, data=st.data())
def test_decode_to_length_is_a_valid_edit_nearest_the_target(scores, fps, dec, data) -> None:
    s = np.asarray(scores, np.float64)
    n = len(s)
    target = data.draw(st.integers(-5, n + 5), label="target")
    kept = selection.decode_to_length(s, fps, dec, target)
    before, after, min_clip, min_gap = dec.frames(fps)
    assert kept.dtype == bool and kept.shape == (n,)
    assert np.array_equal(selection.flags(selection.segments(kept), n), kept)
    clips, gaps = runs_and_gaps(kept)
    assert (clips >= min_clip).all() and (gaps >= min_gap).all()
    total, most = int(kept.sum()), int(selection.shape(np.ones(n, bool), fps, dec).sum())
    if min_clip <= target <= most:
        event("target in the bound's range")
        assert 2 * abs(total - target) <= selection.overshoot_bound(fps, dec)
    # no k does better: the totals of every top-k mask, by brute force (ties by index, NaN last)
    order = sorted(range(n), key=lambda i: (np.isnan(s[i]), -s[i] if not np.isnan(s[i]) else 0.0, i))
    totals = [0]
    for k in range(1, n + 1):
        mask = np.zeros(n, bool)
        mask[order[:k]] = True
        totals.append(int(selection.shape(mask, fps, dec).sum()))
    assert totals == sorted(totals)  # the total is monotone in k
    if target <= 0:
        assert total == 0
    else:
        assert abs(total - target) == min(abs(t - target) for t in totals)


@given(scores=keep_scores(), fps=fps_values, dec=decodings, data=st.data())
def test_decode_to_length_is_nested_in_the_target(scores, fps, dec, data) -> None:
    s = np.asarray(scores, np.float64)
    targets = sorted(data.draw(st.lists(st.integers(-2, len(s) + 2), min_size=2, max_size=5), label="targets"))
    kept = [selection.decode_to_length(s, fps, dec, t) for t in targets]
    for smaller, larger in zip(kept, kept[1:]):
        assert not (smaller & ~larger).any() and smaller.sum() <= larger.sum()


def test_two_high_stretches_of_5_s_with_a_10_s_target_are_exactly_kept() -> None:
    rng = np.random.default_rng(0)
    fps, n = 10, 600
    scores = rng.uniform(0.0, 0.4, n)
    scores[100:150] = rng.uniform(0.6, 1.0, 50)
    scores[400:450] = rng.uniform(0.6, 1.0, 50)
    kept = selection.decode_to_length(scores, fps, SelectionDecoding(), 10 * fps)
    assert selection.segments(kept).tolist() == [[100, 150], [400, 450]]
    assert np.array_equal(selection.decode_threshold(scores, fps, SelectionDecoding(), 0.5), kept)


def test_nan_scores_rank_last_ties_go_by_index_and_an_equal_distance_keeps_less() -> None:
    dec = SelectionDecoding(min_clip_s=0.0, min_gap_s=0.0)
    scores = np.array([np.nan, 0.5, 0.5, 0.5, np.nan, 0.1])
    assert np.flatnonzero(selection.decode_to_length(scores, 10, dec, 2)).tolist() == [1, 2]
    assert np.flatnonzero(selection.decode_to_length(scores, 10, dec, 4)).tolist() == [1, 2, 3, 5]
    assert np.flatnonzero(selection.decode_threshold(scores, 10, dec, 0.3)).tolist() == [1, 2, 3]
    tail = SelectionDecoding(margin_after_s=0.1, min_clip_s=0.0, min_gap_s=0.0)  # one frame -> two
    scores = np.array([1.0, 0.0, 0.9, 0.0, 0.0, 0.0])  # totals by k: 0, 2, 4, ...
    assert selection.decode_to_length(scores, 10, tail, 3).tolist() == [1, 1, 0, 0, 0, 0]  # a tie: the shorter


def test_an_hour_at_10_fps_decodes_by_bisection_in_well_under_a_tenth_of_a_second(monkeypatch) -> None:
    rng = np.random.default_rng(1)
    n = 36_000
    scores = np.repeat(rng.uniform(0, 1, n // 50), 50) + rng.normal(0, 0.05, n)
    dec = SelectionDecoding(margin_before_s=0.3, margin_after_s=0.5)
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        kept = selection.decode_to_length(scores, 10, dec, 6_000)
        seconds.append(time.perf_counter() - start)
    assert min(seconds) < 0.1
    assert 2 * abs(int(kept.sum()) - 6_000) <= selection.overshoot_bound(10, dec)
    calls = []
    real_shape = selection.shape
    monkeypatch.setattr(selection, "shape", lambda *a: calls.append(1) or real_shape(*a))
    selection.decode_to_length(scores, 10, dec, 6_000)
    assert len(calls) <= 1 + int(np.ceil(np.log2(n)))  # all kept, then one per halving


# --- SelectionDecoding -----------------------------------------------------------------------------------------
def test_decoding_rounds_to_frames_and_round_trips_through_its_stored_form() -> None:
    dec = SelectionDecoding(margin_before_s=0.26, margin_after_s=0.0, min_clip_s=0.0, min_gap_s=1.0)
    assert dec.frames(10) == (3, 0, 1, 10)  # min clip at least one frame
    assert dec.frames(30) == (8, 0, 1, 30)
    assert SelectionDecoding.from_dict(dec.to_dict()) == dec
    assert dec.to_dict() == {"margin_before_s": 0.26, "margin_after_s": 0.0, "min_clip_s": 0.0, "min_gap_s": 1.0}
    with pytest.raises(ValueError):
        SelectionDecoding.from_dict({**dec.to_dict(), "min_clip": 2.0})  # a typo is not a default
    with pytest.raises(ValueError):
        SelectionDecoding.from_dict({"min_clip_s": 2.0})
    with pytest.raises(ValueError):
        SelectionDecoding(min_gap_s=-1.0)


# --- SelectionScore --------------------------------------------------------------------------------------------
def kept_flags(n: int, *segs: tuple[int, int]) -> np.ndarray:
    return selection.flags(np.asarray(segs, np.int64).reshape(-1, 2), n)


def test_selection_score_on_hand_worked_videos() -> None:
    fps = 10  # boundary tolerance: +-10 frames
    true_a = kept_flags(200, (0, 50), (100, 200))  # boundaries 50, 100
    pred_a = kept_flags(200, (0, 60), (89, 200))  # boundaries 60 (10 from 50: matched), 89 (11 from 100: not)
    true_b, pred_b = kept_flags(100, (20, 50)), np.zeros(100, bool)  # boundaries 20, 50 missed
    score = selection.score_selection([(pred_a, true_a), (pred_b, true_b)], fps)
    assert (score.tp, score.fp, score.fn) == (150, 21, 30)
    assert (score.boundary_tp, score.boundary_fp, score.boundary_fn) == (1, 1, 3)
    assert score.duration_errors_s == pytest.approx([2.1, 3.0])
    assert score.to_dict() == pytest.approx({
        "kept_f1": 300 / 351, "precision": 150 / 171, "recall": 150 / 180,
        "boundary_f1": 2 / 6, "duration_error_s": 2.55,
    })  # fmt: skip
    assert all(type(v) is float for v in score.to_dict().values())


def test_a_boundary_matches_within_the_tolerance_and_not_one_frame_beyond() -> None:
    for fps in (10, 25, 30):
        tol = round(selection.BOUNDARY_TOLERANCE_S * fps)
        true = kept_flags(300, (100, 300))
        inside = selection.score_selection([(kept_flags(300, (100 + tol, 300)), true)], fps)
        outside = selection.score_selection([(kept_flags(300, (101 + tol, 300)), true)], fps)
        assert (inside.boundary_tp, inside.boundary_fp, inside.boundary_fn) == (1, 0, 0)
        assert (outside.boundary_tp, outside.boundary_fp, outside.boundary_fn) == (0, 1, 1)


def test_keeping_everything_against_the_truth() -> None:
    true = kept_flags(500, (100, 200), (300, 400))  # 40 % kept, four boundaries
    score = SelectionScore()
    score.add(np.ones(500, bool), true, 25)
    figures = score.to_dict()
    assert figures["precision"] == pytest.approx(0.4) and figures["recall"] == 1.0
    assert figures["kept_f1"] == pytest.approx(0.8 / 1.4)
    assert figures["boundary_f1"] == 0.0  # no cut predicted, four missed
    assert figures["duration_error_s"] == pytest.approx(300 / 25)


def test_undefined_precision_and_recall_follow_f1_scores_convention() -> None:
    nothing = SelectionScore()
    assert nothing.to_dict() == {"kept_f1": 1.0, "precision": 1.0, "recall": 1.0, "boundary_f1": 1.0,
                                 "duration_error_s": 0.0}  # nothing to find, nothing predicted
    missed = selection.score_selection([(np.zeros(50, bool), kept_flags(50, (10, 40)))], 10)
    assert (missed.precision, missed.recall, missed.kept_f1) == (0.0, 0.0, 0.0)  # nothing predicted
    spurious = selection.score_selection([(kept_flags(50, (10, 40)), np.zeros(50, bool))], 10)
    assert (spurious.precision, spurious.recall, spurious.kept_f1) == (0.0, 0.0, 0.0)  # nothing to find
    with pytest.raises(ValueError):
        SelectionScore().add(np.ones(5, bool), np.ones(6, bool), 10)


def test_smooth_is_a_centred_mean_with_held_edges() -> None:
    out = smooth(np.array([0.0, 0.0, 3.0, 0.0, np.nan]), 3)
    np.testing.assert_allclose(out, [0.0, 1.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(smooth(np.array([1.0, np.nan]), 1), [1.0, 0.0])
