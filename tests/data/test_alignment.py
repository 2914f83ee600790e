"""FeatureAligner against a slow per-frame, per-column reference (SPEC section 4, properties 2-5, 8, 9, 23, 24, 26, 30)."""
from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.strategies.alignment import Table, audio_samples, frame_times, irregular_times, visual_samples
from trackfusion import schema
from trackfusion.data.alignment import AlignedFeatures, FeatureAligner
from trackfusion.io.features import speaker_turns
from trackfusion.data.embeddings import l2_normalize
from trackfusion.schema import Kind

TOL, MAX_GAP, WARN_GAP = 0.05, 1.0, 5.0
EPS = 1e-9
FACE_COUNT = schema.input_names(schema.VISUAL_SCALARS).index(schema.FACE_COUNT)
FACE = [schema.input_names(schema.VISUAL_SCALARS).index(f) for f in schema.FACE_FIELDS]
VIDEO = "bandicam 2025-03-11 22-57-01-575 (copy), #2"


# --- the slow reference: one frame and one column at a time --------------------------------
def ref_available(s: np.ndarray, tf: float) -> tuple[bool, bool]:
    """(available, exact) of one frame for a modality with sample times `s`."""
    exact = any(abs(x - tf) <= TOL + EPS for x in s)
    before = [x for x in s if x < tf]
    after = [x for x in s if x >= tf]
    bracket = bool(before) and bool(after) and after[0] - before[-1] <= MAX_GAP + EPS
    return exact or bracket, exact


def ref_value(s: np.ndarray, x: np.ndarray, valid: np.ndarray, tf: float, kind: Kind) -> float | None:
    """One column at one available frame; None when no value may be given (the column is 0)."""
    prev = [k for k in range(len(s)) if valid[k] and s[k] < tf]
    nxt = [k for k in range(len(s)) if valid[k] and s[k] >= tf]
    p = prev[-1] if prev else None
    q = nxt[0] if nxt else None
    dp = abs(tf - s[p]) if p is not None else math.inf
    dq = abs(s[q] - tf) if q is not None else math.inf
    nearest = p if dp <= dq else q
    if min(dp, dq) <= TOL + EPS:
        return float(x[nearest])
    if p is None or q is None or s[q] - s[p] > MAX_GAP + EPS:
        return None
    if kind == Kind.BINARY:
        return float(x[p])
    if kind == Kind.COUNT:
        return float(x[nearest])
    w = (tf - s[p]) / (s[q] - s[p])
    return float(x[p]) * (1 - w) + float(x[q]) * w


def ref_scalars(table: Table, t: np.ndarray, columns: tuple[schema.Column, ...]) -> tuple[np.ndarray, np.ndarray]:
    s, x = table.times, table.values.astype(np.float64)
    out = np.zeros((len(t), len(columns)))
    avail = np.zeros(len(t), bool)
    valid = np.isfinite(x)
    if columns is schema.VISUAL_SCALARS:
        for f in FACE:
            valid[:, f] &= x[:, FACE_COUNT] != 0
    dt0 = t[1] - t[0] if len(t) > 1 else 2 * TOL
    for j, tf in enumerate(t):
        avail[j], _ = ref_available(s, tf)
        if not avail[j]:
            continue
        for c, col in enumerate(columns):
            if col.kind == Kind.EVENT:
                lo = (t[j - 1] if j else t[0] - dt0) + TOL
                out[j, c] = float(any(lo < e <= tf + TOL for e, v in zip(s, x[:, c]) if np.isfinite(v) and v > 0.5))
                continue
            v = ref_value(s, x[:, c], valid[:, c], tf, col.kind)
            out[j, c] = 0.0 if v is None else v
        if columns is schema.VISUAL_SCALARS and out[j, FACE_COUNT] == 0:
            out[j, FACE] = 0.0
    return out, avail


def ref_clip(table: Table, t: np.ndarray) -> np.ndarray:
    s = table.times
    rows = table.clip.astype(np.float64)
    norms = np.linalg.norm(rows, axis=1)
    valid = np.isfinite(norms) & (norms > 0)
    out = np.zeros((len(t), schema.CLIP_DIM))
    for j, tf in enumerate(t):
        if not ref_available(s, tf)[0]:
            continue
        prev = [k for k in range(len(s)) if valid[k] and s[k] < tf]
        nxt = [k for k in range(len(s)) if valid[k] and s[k] >= tf]
        p, q = (prev[-1] if prev else None), (nxt[0] if nxt else None)
        dp = abs(tf - s[p]) if p is not None else math.inf
        dq = abs(s[q] - tf) if q is not None else math.inf
        if min(dp, dq) <= TOL + EPS:
            v = rows[p if dp <= dq else q]
        elif p is not None and q is not None and s[q] - s[p] <= MAX_GAP + EPS:
            w = (tf - s[p]) / (s[q] - s[p])
            v = rows[p] * (1 - w) + rows[q] * w
        else:
            continue
        out[j] = v / np.linalg.norm(v)
    return out


def align(t: np.ndarray, audio: Table | None, visual: Table | None, video_id: str = VIDEO) -> AlignedFeatures:
    return FeatureAligner(TOL, MAX_GAP, WARN_GAP).align_features(t, audio, visual, video_id=video_id)


# --- properties ----------------------------------------------------------------------------------------
@given(data=st.data())
def test_property_02_within_tolerance_is_exact(data):
    """A frame within 0.05 s of a sample takes that sample's values unchanged (all kinds), and
    a frame just outside it does not count as aligned: it is interpolated (issue 13: with no
    frame just outside, a tolerance three times wider passed)."""
    steps = data.draw(st.lists(st.floats(0.4, MAX_GAP), min_size=1, max_size=25))  # bracketed: interpolable
    s = 0.3 + np.concatenate([[0.0], np.cumsum(steps)])
    audio = data.draw(audio_samples(times=s, missing_fraction=0.0))
    visual = data.draw(visual_samples(times=s, missing_fraction=0.0, missing_clip_rows=False))
    pick = np.array(sorted(set(data.draw(st.lists(st.integers(0, len(s) - 1), min_size=1, max_size=len(s))))))
    inside = np.array(data.draw(st.lists(st.booleans(), min_size=len(pick), max_size=len(pick))))
    inside[0] = True
    inside[(pick == 0) | (pick == len(s) - 1)] = True  # a frame outside the samples has nothing to interpolate
    offsets = np.array([data.draw(st.floats(-TOL, TOL)) if i else
                        data.draw(st.sampled_from([-1.0, 1.0])) * data.draw(st.floats(TOL + 0.005, 3 * TOL))
                        for i in inside])
    t = s[pick] + offsets
    assume(np.all(np.diff(t) > 0) and s[0] - TOL <= t[0] and t[-1] <= s[-1] + TOL)
    out = align(t, audio, visual)
    assert out.mask[:, :2].all()
    for modality in ("audio", "visual"):
        assert out.stats[modality]["exact"] == pytest.approx(inside.mean())
    kinds = np.array([c.kind.value for c in schema.AUDIO_INPUTS])
    sampled = audio.values[pick]
    cols = kinds != Kind.EVENT.value
    np.testing.assert_array_equal(out.audio[inside][:, cols], sampled[inside][:, cols])
    expected_vis = visual.values[pick].copy()
    no_face = expected_vis[:, FACE_COUNT] == 0
    expected_vis[np.ix_(no_face, FACE)] = 0.0
    np.testing.assert_array_equal(out.visual_scalars[inside], expected_vis[inside])
    rows = visual.clip[pick].astype(np.float64)
    np.testing.assert_allclose(out.clip[inside], (rows / np.linalg.norm(rows, axis=1, keepdims=True))[inside],
                               atol=2e-3)


@given(t=frame_times(max_frames=30), audio=audio_samples(max_size=25), visual=visual_samples(max_size=25))
def test_property_03_interpolation_by_kind(t, audio, visual):
    """Every column of every kind equals the slow per-frame reference (gaps, NaN bridging, events, CLIP)."""
    out = align(t, audio, visual)
    want_a, avail_a = ref_scalars(audio, t, schema.AUDIO_INPUTS)
    want_v, avail_v = ref_scalars(visual, t, schema.VISUAL_SCALARS)
    np.testing.assert_array_equal(out.mask[:, 0], avail_a)
    np.testing.assert_array_equal(out.mask[:, 1], avail_v)
    np.testing.assert_allclose(out.audio, want_a, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out.visual_scalars, want_v, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out.clip.astype(np.float64), ref_clip(visual, t), atol=2e-3)


@given(s=irregular_times(min_size=2, max_size=20, min_step=0.12, max_step=0.9, gap_probability=0), data=st.data())
def test_property_04_forward_fill_equals_last_known(s, data):
    """At an interpolated frame a binary column holds the last sample before the frame."""
    audio = data.draw(audio_samples(times=s, missing_fraction=0.0))
    t = np.arange(s[0] - 0.3, s[-1] + 0.3, 0.1)
    out = align(t, audio, None)
    binary = [i for i, c in enumerate(schema.AUDIO_INPUTS) if c.kind == Kind.BINARY]
    checked = 0
    for j, tf in enumerate(t):
        if not out.mask[j, 0] or np.min(np.abs(s - tf)) <= TOL + EPS:
            continue
        last = np.flatnonzero(s < tf)[-1]
        np.testing.assert_array_equal(out.audio[j, binary], audio.values[last, binary])
        checked += 1
    interp = out.stats["audio"]["interpolated"]
    assert checked == round(interp * len(t))


@given(t=frame_times(max_frames=30), audio=st.none() | audio_samples(), visual=st.none() | visual_samples(), data=st.data())
def test_property_05_concatenated_width_and_mask_shape(t, audio, visual, data):
    """audio | visual | track concatenates to 5 + 522 + 180 in that order; the mask is (T, 3) and zeroes what it hides."""
    out = align(t, audio, visual)
    track = np.random.default_rng(data.draw(st.integers(0, 99))).normal(size=(len(t), schema.TRACK_WIDTH))
    full = np.concatenate([out.audio, out.visual, track.astype(np.float32)], axis=1)
    assert full.shape == (len(t), schema.AUDIO_WIDTH + schema.VISUAL_WIDTH + schema.TRACK_WIDTH) == (len(t), 707)
    assert out.mask.shape == (len(t), 3) and out.mask.dtype == bool
    np.testing.assert_array_equal(full[:, :5], out.audio)
    np.testing.assert_array_equal(full[:, 5:15], out.visual_scalars)
    np.testing.assert_array_equal(full[:, 15:527], out.clip.astype(np.float32))
    np.testing.assert_array_equal(full[:, 527:], track.astype(np.float32))
    assert out.mask[:, 2].all()
    assert not out.audio[~out.mask[:, 0]].any()
    assert not out.visual[~out.mask[:, 1]].any()
    if audio is None:
        assert not out.mask[:, 0].any()
    if visual is None:
        assert not out.mask[:, 1].any()


@given(t=frame_times(max_frames=30), visual=visual_samples(max_size=25))
def test_property_08_clip_unit_norm(t, visual):
    """Aligned CLIP vectors have unit length (float16 storage: within 2e-3) where they are given, else zero."""
    out = align(t, None, visual)
    norms = np.linalg.norm(out.clip.astype(np.float64), axis=1)
    given_rows = norms > 0
    np.testing.assert_allclose(norms[given_rows], 1.0, atol=2e-3)
    assert not given_rows[~out.mask[:, 1]].any()
    # every available frame has a vector unless no valid CLIP row is within reach
    missing = out.stats["visual"]["clip"]["zero_filled_entries"]
    assert int((out.mask[:, 1] & ~given_rows).sum()) == missing
    # the normalisation stage re-normalises in float32: unit length within 1e-6 there
    rows = visual.clip.astype(np.float32)
    rows = rows[np.isfinite(rows).all(axis=1) & (np.abs(rows).sum(axis=1) > 0)]
    if len(rows):
        np.testing.assert_allclose(np.linalg.norm(l2_normalize(rows).astype(np.float64), axis=1), 1.0, atol=1e-6)
    renormed = l2_normalize(out.clip)
    assert renormed.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(l2_normalize(out.clip.astype(np.float32)), axis=1)[given_rows], 1.0, atol=1e-6)


@given(t=frame_times(max_frames=30), visual=visual_samples(max_size=25))
def test_property_09_face_fields_zero_without_face(t, visual):
    """Face fields are 0 wherever the aligned face_count is 0, and the mask stays True there."""
    out = align(t, None, visual)
    no_face = out.visual_scalars[:, FACE_COUNT] == 0
    assert not out.visual_scalars[np.ix_(no_face, FACE)].any()
    # frames whose exact sample has no face are still available
    for j, tf in enumerate(t):
        d = np.abs(visual.times - tf)
        k = int(np.argmin(d))
        if d[k] <= TOL and visual.values[k, FACE_COUNT] == 0:
            assert out.mask[j, 1] and no_face[j]


@given(
    before=st.floats(1.0, 4.0),
    gap=st.floats(WARN_GAP + 0.3, 9.0),
    after=st.floats(1.0, 4.0),
    video_id=st.sampled_from([VIDEO, "clip ä.b", "x;y=z"]),
)
def test_property_23_failure_logs_video_and_ranges(before, gap, after, video_id):
    """A gap over warn_gap_s is logged as a warning with the video id and its time range; unavailable frames are listed."""
    s = np.concatenate([np.arange(0.0, before, 0.1), before + gap + np.arange(0.0, after, 0.1)])
    audio = Table(s, np.ones((len(s), 5), np.float32))
    t = np.arange(0.0, s[-1], 0.1)
    handler = _Capture()
    logger = logging.getLogger("trackfusion.data.alignment")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        out = align(t, audio, None, video_id=video_id)
    finally:
        logger.removeHandler(handler)
    k = int(np.argmax(np.diff(s)))
    a, b = s[k], s[k + 1]
    warnings = [r.getMessage() for r in handler.records if r.levelno == logging.WARNING]
    assert any(repr(video_id) in m and f"{a:.2f} s" in m and f"{b:.2f} s" in m for m in warnings), warnings
    off = np.flatnonzero(~out.mask[:, 0])
    assert len(off)
    listed = [r.getMessage() for r in handler.records if "unavailable on" in r.getMessage()]
    assert len(listed) == 1 and repr(video_id) in listed[0]
    assert f"{t[off[0]]:.2f}-{t[off[-1]]:.2f} s" in listed[0]


@given(t=frame_times(max_frames=30), audio=audio_samples(max_size=25), frac=st.sampled_from([0.0, 0.2, 0.5, 0.9]))
def test_property_24_logs_interpolated_percentage(t, audio, frac):
    """The percentage of interpolated frames is logged per video and modality; over the threshold it is a warning."""
    handler = _Capture()
    logger = logging.getLogger("trackfusion.data.alignment")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        FeatureAligner(TOL, MAX_GAP, WARN_GAP, interp_warn_fraction=max(frac, 1e-6)).align_features(
            t, audio, None, VIDEO
        )
    finally:
        logger.removeHandler(handler)
    flags = [ref_available(audio.times, tf) for tf in t]
    pct = 100.0 * sum(a and not e for a, e in flags) / len(t)
    info = [r.getMessage() for r in handler.records if r.levelno == logging.INFO]
    assert any(repr(VIDEO) in m and "audio" in m and f"{pct:.1f} % interpolated" in m for m in info), info
    warned = [r.getMessage() for r in handler.records if r.levelno == logging.WARNING and "interpolated" in r.getMessage()]
    assert bool(warned) == (pct / 100 > max(frac, 1e-6))
    if warned:
        assert f"{pct:.1f} %" in warned[0] and repr(VIDEO) in warned[0]


@given(t=frame_times(min_frames=2, max_frames=30), audio=audio_samples(), swap=st.integers(0, 28))
def test_property_26_aligned_times_strictly_increasing(t, audio, swap):
    """Aligned times are the frame times, strictly increasing; a non-increasing grid is refused."""
    out = align(t, audio, None)
    assert np.all(np.diff(out.times) > 0)
    np.testing.assert_array_equal(out.times, t)
    bad = t.copy()
    i = swap % (len(t) - 1)
    bad[i + 1] = bad[i]
    with pytest.raises(ValueError, match="strictly increasing"):
        align(bad, audio, None)


@given(t=frame_times(max_frames=30), audio=audio_samples(max_size=25), visual=visual_samples(max_size=25))
def test_property_30_interpolated_between_neighbours(t, audio, visual):
    """An interpolated continuous value lies between the two valid neighbouring samples of its column."""
    out = align(t, audio, visual)
    for table, got, col, columns in (
        (audio, out.audio, 0, schema.AUDIO_INPUTS),
        (visual, out.visual_scalars, 1, schema.VISUAL_SCALARS),
    ):
        for c, column in enumerate(columns):
            if column.kind != Kind.CONTINUOUS:
                continue
            x = table.values[:, c]
            valid = np.isfinite(x)
            if columns is schema.VISUAL_SCALARS and c in FACE:
                valid &= table.values[:, FACE_COUNT] != 0
            for j, tf in enumerate(t):
                if not out.mask[j, col] or got[j, c] == 0:
                    continue
                prev = np.flatnonzero(valid & (table.times < tf))
                nxt = np.flatnonzero(valid & (table.times >= tf))
                near = np.abs(table.times[valid] - tf).min() if valid.any() else np.inf
                if near <= TOL + EPS or not len(prev) or not len(nxt):
                    continue
                a, b = x[prev[-1]], x[nxt[0]]
                slack = 1e-5 * max(1.0, abs(a), abs(b))
                assert min(a, b) - slack <= got[j, c] <= max(a, b) + slack


# --- examples ---------------------------------------------------------------------------------------------
class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_no_values_outside_coverage_or_across_long_gaps():
    s = np.array([1.0, 1.1, 1.2, 3.0, 3.1, 3.2])  # 1.8 s gap: longer than max_interp_gap_s
    audio = Table(s, np.full((6, 5), 7.0, np.float32))
    t = np.round(np.arange(0.5, 4.0, 0.1), 10)
    out = align(t, audio, None)
    inside = ((t >= 1.0 - TOL) & (t <= 1.2 + TOL)) | ((t >= 3.0 - TOL) & (t <= 3.2 + TOL))
    np.testing.assert_array_equal(out.mask[:, 0], inside)
    assert not out.audio[~inside].any()
    assert (out.audio[inside, :4] == 7.0).all()
    assert out.stats["audio"]["unavailable"] == pytest.approx((~inside).mean())


def test_nan_and_inf_are_bridged_and_counted():
    s = np.arange(0.0, 1.0, 0.1)
    x = np.tile(np.arange(10, dtype=np.float32)[:, None], (1, 5))  # value = sample index
    x[:, 4] = 0  # no speaker turns
    x[3, 0] = np.nan  # bridged from samples 2 and 4
    x[5, 2] = np.inf
    x[6, 2] = -np.inf  # 5 and 6 bridged from 4 and 7 (0.3 s apart)
    x[:, 3] = np.nan  # binary column with no value at all: 0, counted
    out = align(s + 0.01, Table(s, x), None)
    assert np.isclose(out.audio[3, 0], 3.1, atol=1e-5)  # frame 0.31 s: linear between samples 2 and 4
    np.testing.assert_allclose(out.audio[5:7, 2], [5.1, 6.1], atol=1e-4)
    assert (out.audio[[2, 4], 0] == [2.0, 4.0]).all()  # valid neighbours untouched
    assert np.isfinite(out.audio).all()
    assert not out.audio[:, 3].any()
    st_ = out.stats["audio"]
    assert st_["missing_samples"] == 3 + 10
    assert st_["bridged_entries"] == 3
    assert st_["zero_filled_entries"] == 10
    assert out.mask[:, 0].all()


def test_bridge_refused_across_long_column_gap():
    s = np.arange(0.0, 3.0, 0.1)
    x = np.ones((len(s), 5), np.float32)
    x[5:20, 0] = np.nan  # 1.6 s without this column: no value invented for it
    out = align(s, Table(s, x), None)
    assert not out.audio[5:20, 0].any() and (out.audio[:5, 0] == 1).all() and (out.audio[20:, 0] == 1).all()
    assert (out.audio[:, 1:4] == 1).all()
    assert out.stats["audio"]["zero_filled_entries"] == 15


def test_missing_clip_rows_are_bridged_after_full_check():
    s = np.arange(0.0, 2.0, 0.1)
    rng = np.random.default_rng(0)
    clip = rng.normal(size=(len(s), 512)).astype(np.float16)
    clip[4, 100] = np.nan  # only a later value is empty: found when its norm is taken
    clip[9] = 0.0  # an all-zero row is no vector either
    vis = Table(s, np.zeros((len(s), 10), np.float32), clip)
    out = align(s, None, vis)
    norms = np.linalg.norm(out.clip.astype(np.float32), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=2e-3)
    assert out.stats["visual"]["clip"]["missing_samples"] == 2
    np.testing.assert_allclose(out.clip.astype(np.float64), ref_clip(vis, s), atol=2e-3)


def test_events_land_on_the_frame_whose_window_holds_them():
    s = np.array([0.0, 0.1, 0.2, 0.31, 0.4, 0.5])
    x = np.zeros((6, 5), np.float32)
    x[[1, 3], 4] = 1.0  # speaker turns at 0.1 and 0.31
    t = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    out = align(t, Table(s, x), None)
    np.testing.assert_array_equal(out.audio[:, 4], [0, 1, 0, 1, 0, 0])


def test_dataframe_input_matches_table_and_derives_speaker_turns():
    s = np.arange(0.0, 2.0, 0.1)
    rng = np.random.default_rng(1)
    speakers = np.array(["", "a", "a", "", "b", "b", "a", "", "", "a"] * 2, dtype=object)
    turns = speaker_turns(speakers)
    np.testing.assert_array_equal(np.flatnonzero(turns), [4, 6, 14, 16])
    x = rng.random((len(s), 5)).astype(np.float32)
    x[:, 4] = turns
    df = pd.DataFrame({"time": s[::-1]})  # out of order: sorted by the aligner
    for i, name in enumerate(schema.input_names(schema.AUDIO_INPUTS)[:4]):
        df[name] = x[::-1, i]
    df[schema.SPEAKER_ID] = speakers[::-1]
    t = s + 0.03
    from_df = align(t, df, None)
    from_table = align(t, Table(s, x), None)
    np.testing.assert_array_equal(from_df.audio, from_table.audio)
    np.testing.assert_array_equal(from_df.mask, from_table.mask)


def test_visual_dataframe_matches_table():
    s = np.arange(0.0, 1.0, 1 / 12)
    rng = np.random.default_rng(2)
    vis = Table(s, rng.random((len(s), 10)).astype(np.float32), rng.normal(size=(len(s), 512)).astype(np.float16))
    df = pd.DataFrame(np.concatenate([s[:, None], vis.values, vis.clip.astype(np.float32)], axis=1),
                      columns=["time", *schema.input_names(schema.VISUAL_INPUTS)])
    t = np.arange(0.0, 1.0, 0.1)
    a, b = align(t, None, df), align(t, None, vis)
    np.testing.assert_array_equal(a.visual, b.visual)


def test_missing_modalities_are_unavailable_and_zero():
    t = np.arange(5) / 10
    out = align(t, None, None)
    assert out.mask.tolist() == [[False, False, True]] * 5
    assert not out.audio.any() and not out.visual.any()
    assert out.visual.shape == (5, 522) and out.visual.dtype == np.float32
    assert out.clip.dtype == np.float16 and out.audio.dtype == np.float32


# --- the shared strategies themselves --------------------------------------------------------------------
@given(s=irregular_times(), t=frame_times(), audio=audio_samples(), visual=visual_samples())
def test_strategies_give_valid_inputs(s, t, audio, visual):
    for times in (s, t, audio.times, visual.times):
        assert np.all(np.diff(times) > 0) and np.isfinite(times).all()
    assert audio.values.shape == (len(audio.times), schema.AUDIO_WIDTH) and audio.clip is None
    assert visual.values.shape == (len(visual.times), schema.VISUAL_SCALAR_WIDTH)
    assert visual.clip.shape == (len(visual.times), schema.CLIP_DIM) and visual.clip.dtype == np.float16
    no_face = visual.values[:, FACE_COUNT] == 0
    assert not np.isfinite(visual.values[np.ix_(no_face, FACE)]).any()


def test_empty_and_single_sample_tables():
    t = np.arange(4) / 10
    empty = Table(np.zeros(0), np.zeros((0, 5), np.float32))
    out = align(t, empty, None)
    assert not out.mask[:, 0].any() and not out.audio.any()
    one = Table(np.array([0.1]), np.full((1, 5), 2.0, np.float32))
    out = align(t, one, None)
    np.testing.assert_array_equal(out.mask[:, 0], [False, True, False, False])
    assert (out.audio[1, :4] == 2.0).all()


def test_opposite_clip_neighbours_give_zero_not_a_crash():
    s = np.array([0.0, 0.2])
    row = np.random.default_rng(0).normal(size=512).astype(np.float16)
    vis = Table(s, np.zeros((2, 10), np.float32), np.stack([row, -row]))
    out = align(np.array([0.1]), None, vis)  # halfway: the interpolated vector is 0
    assert out.mask[0, 1] and not out.clip.any()
    assert out.stats["visual"]["clip"]["zero_filled_entries"] == 1


# --- the CLIP fast path (held vectors gathered, not interpolated) ----------------------------------------
@given(
    t=frame_times(max_frames=40),
    visual=visual_samples(max_size=30, held_clip=True)
    | visual_samples(max_size=30, held_clip=True, missing_clip_rows=True)
    | visual_samples(max_size=30),
)
def test_clip_fast_path_equals_interpolating_every_frame(t, visual):
    """Gathering a held vector's unit vector gives exactly what interpolating and renormalising every frame gives
    (held runs, NaN and all-zero rows, gaps, opposite neighbours), with the same counts."""
    fast = FeatureAligner(TOL, MAX_GAP, WARN_GAP)
    slow = FeatureAligner(TOL, MAX_GAP, WARN_GAP)
    slow._clip_fast_path = False
    a, b = fast.align_features(t, None, visual, VIDEO), slow.align_features(t, None, visual, VIDEO)
    np.testing.assert_array_equal(a.clip, b.clip)
    sa, sb = dict(a.stats["visual"]["clip"]), dict(b.stats["visual"]["clip"])
    assert sa.pop("interpolated_frames") <= sb.pop("interpolated_frames")
    assert sa == sb


def test_clip_held_vector_is_gathered_not_interpolated():
    s = np.arange(0.0, 3.0, 1 / 12)
    rng = np.random.default_rng(3)
    held = np.repeat(rng.normal(size=(3, 512)).astype(np.float16), 12, axis=0)  # one vector a second
    held[30] = 0.0  # an empty row inside a run: bridged from its neighbours in the run
    vis = Table(s, np.zeros((len(s), 10), np.float32), held)
    t = np.arange(0.0, 2.9, 0.1) + 0.04
    out = align(t, None, vis)
    st_ = out.stats["visual"]["clip"]
    assert st_["runs"] == 5 and st_["missing_samples"] == 1
    assert st_["interpolated_frames"] <= 2  # only frames between two different vectors
    np.testing.assert_allclose(out.clip.astype(np.float64), ref_clip(vis, t), atol=2e-3)
