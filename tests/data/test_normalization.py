"""Preprocessors: streaming z-score fit on available frames, transform, inverse, save/load (properties 6, 7)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackfusion import schema
from tests.strategies.tracks import random_track
from trackfusion.data.embeddings import l2_normalize
from trackfusion.data.normalization import (
    AudioFeaturePreprocessor,
    TrackPreprocessor,
    VisualFeaturePreprocessor,
    load_preprocessors,
    save_preprocessors,
)

FACE_COUNT = schema.input_names(schema.VISUAL_SCALARS).index(schema.FACE_COUNT)
FACE = [schema.input_names(schema.VISUAL_SCALARS).index(f) for f in schema.FACE_FIELDS]
ACTIVE = schema.track_columns("active")
ASSET = schema.track_columns("asset_id")


def audio_batch(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.empty((n, 5), np.float32)
    x[:, 0] = rng.normal(rng.uniform(-3, 3), rng.uniform(0.01, 50), n)
    x[:, 2] = rng.exponential(rng.uniform(10, 2000), n)
    x[:, [1, 3, 4]] = rng.random((n, 3)) < 0.4
    mask = rng.random(n) < 0.8
    x[~mask] = 0.0  # aligned data: unavailable frames are zero
    return x, mask


def visual_batch(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.empty((n, schema.VISUAL_WIDTH), np.float32)
    x[:, :10] = rng.normal(rng.uniform(-5, 5, 10), rng.uniform(0.05, 20, 10), (n, 10))
    x[:, FACE_COUNT] = rng.integers(0, 3, n)
    x[np.ix_(x[:, FACE_COUNT] == 0, FACE)] = 0.0
    x[:, 10:] = l2_normalize(rng.normal(size=(n, schema.CLIP_DIM)).astype(np.float32))
    mask = rng.random(n) < 0.85
    x[~mask] = 0.0
    return x, mask


def track_batch(rng: np.random.Generator, n: int) -> np.ndarray:
    """Frames each on their own, 30 % active, every parameter with its own mean and spread."""
    return random_track(rng, n, mean_run=1.0, p_active=0.3, loc=rng.uniform(-50, 100, 7), scale=rng.uniform(0.5, 30, 7))


videos = st.lists(st.integers(1, 40), min_size=1, max_size=4)


@given(seed=st.integers(0, 2**32 - 1), lengths=videos)
def test_property_06_normalize_inverse_round_trip(seed, lengths):
    """inverse_transform(transform(x)) == x on available entries, for audio, visual (with CLIP) and track."""
    rng = np.random.default_rng(seed)
    a_batches = [audio_batch(rng, n) for n in lengths]
    v_batches = [visual_batch(rng, n) for n in lengths]
    t_batches = [track_batch(rng, n) for n in lengths]
    audio = AudioFeaturePreprocessor().fit(a_batches)
    visual = VisualFeaturePreprocessor().fit(v_batches)
    track = TrackPreprocessor().fit(t_batches)
    for (xa, ma), (xv, mv), xt in zip(a_batches, v_batches, t_batches):
        za = audio.transform(xa, ma)
        np.testing.assert_allclose(audio.inverse_transform(za, ma)[ma], xa[ma], rtol=1e-5, atol=1e-3)
        np.testing.assert_array_equal(za[:, [1, 3, 4]], xa[:, [1, 3, 4]])  # binary and event untouched
        zv = visual.transform(xv, mv)
        back = visual.inverse_transform(zv, mv)
        np.testing.assert_allclose(back[mv, :10], xv[mv, :10], rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(back[mv, 10:], xv[mv, 10:], atol=1e-6)
        assert not zv[~mv].any() and not za[~ma].any()
        zt = track.transform(xt)
        np.testing.assert_allclose(track.inverse_transform(zt), xt, rtol=1e-5, atol=1e-3)
        np.testing.assert_array_equal(zt[:, ACTIVE], xt[:, ACTIVE])
        np.testing.assert_array_equal(zt[:, ASSET], xt[:, ASSET])
        inactive = (xt[:, ACTIVE] < 0.5).repeat(schema.NUM_TRACK_PARAMS, axis=1)  # (T, 180) per track
        cont = np.zeros(schema.TRACK_WIDTH, bool)
        for p in schema.TRACK_CONTINUOUS:
            cont[schema.track_columns(p)] = True
        assert not zt[inactive & cont].any()  # inactive track-frames stay exactly 0


@given(seed=st.integers(0, 2**32 - 1), lengths=videos, column=st.integers(0, 9).filter(lambda c: c != FACE_COUNT))
def test_property_07_column_independence(seed, lengths, column):
    """Changing one visual column's values, missing samples included, changes no other
    column's statistics or normalised values (issue 13: the data never held a missing
    value, so judging validity per row instead of per column passed)."""
    rng = np.random.default_rng(seed)
    batches = []
    for n in lengths:
        x, m = visual_batch(rng, n)
        holes = rng.random(x.shape) < 0.1  # missing samples of single columns (SPEC 5: NaN)
        holes[:, FACE_COUNT] = False
        batches.append((np.where(holes, np.nan, x).astype(x.dtype), m))
    changed = []
    for x, m in batches:
        y = x.copy()
        y[:, column] = rng.normal(rng.uniform(-100, 100), rng.uniform(0.1, 100), len(y)) * (
            1 if column not in FACE else (y[:, FACE_COUNT] != 0)
        )
        if column != FACE_COUNT:
            y[rng.random(len(y)) < 0.3, column] = np.nan  # other rows of this column go missing
        changed.append((y, m))
    a = VisualFeaturePreprocessor().fit(batches)
    b = VisualFeaturePreprocessor().fit(changed)
    others = [c for c in range(10) if c != column]
    np.testing.assert_array_equal(a.mean_[others], b.mean_[others])
    np.testing.assert_array_equal(a.std_[others], b.std_[others])
    for (x, m), (y, _) in zip(batches, changed):
        np.testing.assert_array_equal(a.transform(x, m)[:, others], b.transform(y, m)[:, others])


def test_streaming_fit_equals_one_batch_and_ignores_unavailable_frames():
    rng = np.random.default_rng(3)
    batches = [audio_batch(rng, n) for n in (7, 1, 50, 13)]
    streamed = AudioFeaturePreprocessor().fit(batches)
    x = np.concatenate([b[0] for b in batches])
    m = np.concatenate([b[1] for b in batches])
    whole = AudioFeaturePreprocessor().fit([(x, m)])
    np.testing.assert_allclose(streamed.mean_, whole.mean_, rtol=1e-10)
    np.testing.assert_allclose(streamed.std_, whole.std_, rtol=1e-10)
    avail = x[m].astype(np.float64)
    np.testing.assert_allclose(whole.mean_[[0, 2]], avail[:, [0, 2]].mean(0), rtol=1e-9)
    np.testing.assert_allclose(whole.std_[[0, 2]], avail[:, [0, 2]].std(0), rtol=1e-6)
    assert whole.mean_[1] == 0 and whole.std_[1] == 1  # binary: not z-scored
    garbage = x.copy()
    garbage[~m] = 1e6  # values on unavailable frames never count
    np.testing.assert_array_equal(AudioFeaturePreprocessor().fit([(garbage, m)]).mean_, whole.mean_)


def test_face_fields_fitted_on_frames_with_a_face_and_zero_without():
    x = np.zeros((6, 10), np.float32)
    x[:, FACE_COUNT] = [0, 1, 0, 2, 1, 0]
    x[[1, 3, 4], FACE[0]] = [1.0, 2.0, 3.0]
    p = VisualFeaturePreprocessor().fit([x])
    assert p.mean_[FACE[0]] == pytest.approx(2.0)
    z = p.transform(x)
    assert not z[x[:, FACE_COUNT] == 0][:, FACE].any()
    np.testing.assert_allclose(z[[1, 3, 4], FACE[0]], (np.array([1, 2, 3]) - 2) / np.std([1, 2, 3]), rtol=1e-6)


def test_track_stats_from_active_track_frames_only():
    rng = np.random.default_rng(4)
    t = track_batch(rng, 30)
    p = TrackPreprocessor().fit([t])
    per = t.reshape(30, schema.NUM_TRACKS, schema.NUM_TRACK_PARAMS)
    active = per[:, :, 0] > 0.5
    scale = per[:, :, schema.param_index("scale")][active].astype(np.float64)
    assert p.mean_[schema.param_index("scale")] == pytest.approx(scale.mean())
    assert p.std_[schema.param_index("scale")] == pytest.approx(scale.std())
    assert p.mean_[0] == 0 and p.std_[0] == 1 and p.mean_[1] == 0 and p.std_[1] == 1


def test_constant_column_gets_floor_not_infinity():
    x = np.ones((10, 5), np.float32)
    p = AudioFeaturePreprocessor().fit([x])
    z = p.transform(x)
    assert np.isfinite(z).all() and not z[:, [0, 2]].any()
    assert p.std_[0] == 1.0


def test_unfitted_and_wrong_shapes_are_refused():
    with pytest.raises(RuntimeError, match="not fitted"):
        AudioFeaturePreprocessor().transform(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"\(T, 5\)"):
        AudioFeaturePreprocessor().partial_fit(np.zeros((2, 6), np.float32))


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    a = AudioFeaturePreprocessor().fit([audio_batch(rng, 20)])
    v = VisualFeaturePreprocessor().fit([visual_batch(rng, 20)])
    t = TrackPreprocessor().fit([track_batch(rng, 20)])
    path = tmp_path / "normalization.json"
    save_preprocessors(path, a, v, t)
    a2, v2, t2 = load_preprocessors(path)
    xa, ma = audio_batch(rng, 9)
    xv, mv = visual_batch(rng, 9)
    xt = track_batch(rng, 9)
    np.testing.assert_array_equal(a.transform(xa, ma), a2.transform(xa, ma))
    np.testing.assert_array_equal(v.transform(xv, mv), v2.transform(xv, mv))
    np.testing.assert_array_equal(t.transform(xt), t2.transform(xt))
    state = json.loads(path.read_text())
    assert state["track"]["columns"] == list(schema.TRACK_PARAMS) and len(state["track"]["std"]) == 9
    a.save(tmp_path / "audio.json")
    np.testing.assert_array_equal(AudioFeaturePreprocessor.load(tmp_path / "audio.json").std_, a.std_)
    with pytest.raises(ValueError, match="kind"):
        VisualFeaturePreprocessor.load(tmp_path / "audio.json")
