"""The layout score (trackfusion.layouts): what an edit shows against the editor's, one scorer for every row."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackfusion import cuts, schema
from trackfusion.layouts import LayoutScore, score_layouts
from tests.strategies.tracks import random_track

P = schema.NUM_TRACK_PARAMS


@st.composite
def timeline_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """(truth, prediction) of one video, each editor-like runs of states."""
    seed = draw(st.integers(0, 2**32 - 1))
    T = draw(st.integers(2, 80))
    rng = np.random.default_rng(seed)
    return random_track(rng, T, mean_run=8.0), random_track(rng, T, mean_run=8.0)


@settings(max_examples=40, deadline=None)
@given(timeline_pairs())
def test_the_truth_scores_perfectly_and_the_first_frame_is_never_scored(pair):
    true, pred = pair
    pred[0] = np.where(true[0] == 0, 1.0, 0.0)  # a wrong first frame: given, so not counted
    pred[1:] = true[1:]
    f = score_layouts([(pred, true)])
    assert f["layout_accuracy"] == 1.0 and set(f["per_track"]) == {1.0}
    assert f["active_f1"] == 1.0 and f["scale_mae"] in (0.0, None) and f["frames"] == len(true) - 1
    assert set(f["per_track_switch_f1"]) <= {1.0, None}


@settings(max_examples=40, deadline=None)
@given(timeline_pairs())
def test_whole_layout_accuracy_is_below_every_tracks_agreement_and_counts_frames_that_agree_everywhere(pair):
    true, pred = pair
    f = score_layouts([(pred, true)])
    key_p, key_t = cuts.layout(pred[1:]), cuts.layout(true[1:])
    assert f["layout_accuracy"] == pytest.approx((key_p == key_t).all(-1).mean())
    assert all(f["layout_accuracy"] <= a + 1e-12 for a in f["per_track"])
    assert f["per_track"] == pytest.approx(list((key_p == key_t).mean(0)))


@settings(max_examples=30, deadline=None)
@given(timeline_pairs(), st.floats(-50, 50, allow_nan=False))
def test_placement_errors_count_only_track_frames_both_show(pair, shift):
    true, pred = pair
    pred = true.copy()
    by_track = pred.reshape(len(pred), -1, P)
    both = by_track[1:, :, 0] > 0.5
    by_track[:, :, 2] += shift * (by_track[:, :, 0] > 0.5)  # scale moved where shown
    off = pred.copy().reshape(len(pred), -1, P)
    f = score_layouts([(pred, true)])
    assert f["scale_mae"] == (pytest.approx(abs(shift), abs=1e-5) if both.any() else None)  # float32 frames
    assert f["position_mae"] in (0.0, None) and f["layout_accuracy"] == 1.0
    off[:, :, :] = 0.0  # nothing shown: no placement to score, every active flag missed
    g = score_layouts([(off.reshape(len(pred), -1), true)])
    assert g["scale_mae"] is None and g["asset_accuracy"] is None
    assert g["active_recall"] == (0.0 if both.any() else None)


@settings(max_examples=40, deadline=None)
@given(timeline_pairs(), st.integers(-8, 8))
def test_switch_f1_matches_each_tracks_switches_within_the_tolerance(pair, lag):
    """A prediction that makes every switch `lag` frames late (early where negative): its switch F1 is the
    one-to-one matching of each track's switches (``cuts.match_events``), and within the tolerance every
    switch is found whatever it costs the agreement."""
    true, _ = pair
    shifted = np.roll(true, lag, axis=0)
    if lag < 0:
        shifted[lag:] = true[-1]
    shifted[: max(lag, 0) + 1] = true[0]  # the given first frame, held until the first late switch
    f = score_layouts([(shifted, true)])
    key_t, key_p = cuts.layout(true), cuts.layout(shifted)
    for n, got in enumerate(f["per_track_switch_f1"]):
        at_t = 1 + np.flatnonzero(key_t[1:, n] != key_t[:-1, n])
        at_p = 1 + np.flatnonzero(key_p[1:, n] != key_p[:-1, n])
        tp, fp, fn = cuts.match_events(at_p, at_t)
        assert got == (None if tp + fp + fn == 0 else pytest.approx(2 * tp / (2 * tp + fp + fn)))
        if abs(lag) <= cuts.TOLERANCE and len(at_p) == len(at_t):
            assert got in (None, 1.0)  # every switch found, late or early within the tolerance


def test_switch_f1_of_a_toggle_counts_its_errors_where_agreement_counts_their_length():
    """The face cam is a toggle: one missed switch leaves it inverted until the next; agreement counts those
    frames, switch F1 the one error."""
    true = np.zeros((100, schema.NUM_TRACKS * P))
    true[:40, 1 * P] = true[70:, 1 * P] = 1.0  # V2 on, off at 40, on again at 70
    missed = np.zeros_like(true)
    missed[:70, 1 * P] = 1.0  # the switch at 40 missed; its switch at 70 turns it off
    f = score_layouts([(missed, true)])
    assert f["per_track"][1] == pytest.approx(39 / 99)  # right only until 40
    assert f["per_track_switch_f1"][1] == pytest.approx(2 / 3)  # the switch at 70 found, the one at 40 missed
    assert f["per_track_switch_f1"][0] is None  # V1: no switch in either


def test_figures_pool_over_videos_and_say_none_over_nothing():
    rng = np.random.default_rng(0)
    a, b = random_track(rng, 30), random_track(rng, 50)
    s = LayoutScore()
    s.add(a, a)
    s.add(np.zeros_like(b), b)
    f = s.figures()
    assert f["frames"] == 29 + 49 and f["videos"] == 2
    empty = LayoutScore().figures()
    assert empty["layout_accuracy"] is None and empty["active_f1"] is None and empty["scale_mae"] is None
    with pytest.raises(ValueError, match="differ in shape"):
        s.add(a, b)
