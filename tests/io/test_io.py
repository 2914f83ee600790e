"""Reading and discovering raw feature files (trackfusion.io.features, CSV side).

Properties 1, 14, 22 and 25 of SPEC section 9, and one example test for each reading
error of SPEC section 8.
"""
from __future__ import annotations

import logging
import math
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackfusion import schema
from trackfusion.io.features import (
    FeatureFileError,
    FeatureFiles,
    discover_features,
    read_audio_csv,
    read_visual_csv,
    speaker_turns,
)
from trackfusion.io.sequences import SequenceReader, TrackData, TrackSequenceError, write_sequences
from tests.strategies.data_files import (
    AUDIO_COLUMNS,
    VISUAL_COLUMNS,
    audio_tables,
    capture_logs,
    distinct_video_ids,
    sample_times,
    video_ids,
    visual_tables,
    write_table,
)

AUDIO_HEADER = ",".join(AUDIO_COLUMNS)
NUMERIC_AUDIO = ["audio_energy_rms", "audio_is_speaking", "silence_duration_ms", "text_is_active"]
SCALARS = schema.input_names(schema.VISUAL_SCALARS)
CLIPS = schema.input_names(schema.CLIP_COLUMNS)
VID = "bandicam 2025-03-11 22-57-01-575"


# --- slow references -----------------------------------------------------------


def ref_speaker_turns(ids: list[object]) -> list[float]:
    """Row by row: 1 where a non-empty speaker differs from the last non-empty one."""

    def key(s: object) -> object:
        if s is None or (isinstance(s, float) and math.isnan(s)) or str(s).strip() == "":
            return None
        try:
            return float(s)  # numeric ids compare by value
        except (TypeError, ValueError):
            return str(s).strip()

    out, last = [], None
    for s in ids:
        k = key(s)
        out.append(1.0 if k is not None and last is not None and k != last else 0.0)
        if k is not None:
            last = k
    return out


def assert_same_with_nan(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-6) -> None:
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    ok = ~np.isnan(expected)
    np.testing.assert_allclose(actual[ok], expected[ok], rtol=rtol, atol=1e-7)


def audio_file(tmp: Path, body: str, name: str = VID) -> Path:
    path = tmp / schema.audio_file_name(name)
    path.write_text(AUDIO_HEADER + "\n" + body, encoding="utf-8")
    return path


def _visual_fixed(n: int, seed: int) -> pd.DataFrame:
    """A small visual table with every value present (one face per row)."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(np.round(rng.random((n, len(VISUAL_COLUMNS))), 5), columns=VISUAL_COLUMNS)
    table["time"] = np.round(np.arange(n) / 12, 3)
    table[schema.FACE_COUNT] = 1.0
    return table


# --- property 1 ----------------------------------------------------------------


@given(data=st.data())
def test_property_01_feature_files_load_non_empty(data: st.DataObject) -> None:
    """Both tables of a video load non-empty and equal what was written (a round trip)."""
    a_times = data.draw(sample_times(min_size=1, max_size=12, jitter_s=0.03))
    v_times = data.draw(sample_times(min_size=1, max_size=12, step_s=1 / 12, jitter_s=0.02))
    audio = data.draw(audio_tables(a_times, inf_fraction=data.draw(st.sampled_from([0.0, 0.1]))))
    visual = data.draw(visual_tables(v_times, nan_fraction=0.1, inf_fraction=0.05))
    vid = data.draw(video_ids())
    # written out of order and with repeated times (changed values): the reader sorts and keeps the first
    order = data.draw(st.permutations(range(len(audio))))
    repeats = data.draw(st.lists(st.integers(0, len(audio) - 1), max_size=3))
    shuffled = audio.iloc[list(order)]
    repeated = audio.iloc[repeats].assign(audio_energy_rms=-1.0, speaker_id="someone else")
    written = pd.concat([shuffled, repeated])
    written_t = written["time"].to_numpy()
    with tempfile.TemporaryDirectory() as tmp:
        a = read_audio_csv(write_table(Path(tmp) / schema.audio_file_name(vid), written))
        v = read_visual_csv(write_table(Path(tmp) / schema.visual_file_name(vid), visual))
    assert len(a) == len(audio) > 0 and len(v) == len(visual) > 0
    np.testing.assert_allclose(a.times, a_times, rtol=0, atol=1e-12)
    np.testing.assert_allclose(v.times, v_times, rtol=0, atol=1e-12)

    expected_audio = audio[NUMERIC_AUDIO].to_numpy(np.float64, copy=True)
    expected_audio[~np.isfinite(expected_audio)] = np.nan  # inf is a missing sample
    assert_same_with_nan(a.values[:, :4].astype(np.float64), expected_audio)
    assert a.values[:, 4].tolist() == ref_speaker_turns(audio["speaker_id"].tolist())
    assert a.issues.unsorted_rows == int((np.diff(written_t) < 0).sum())
    assert a.issues.duplicate_rows == len(repeats)
    assert a.issues.nonfinite == {
        c: int((~np.isfinite(audio[c].to_numpy(np.float64))).sum())
        for c in NUMERIC_AUDIO if (~np.isfinite(audio[c].to_numpy(np.float64))).any()
    }

    expected_vis = visual[SCALARS].to_numpy(np.float64, copy=True)
    no_face = visual[schema.FACE_COUNT].to_numpy() == 0
    expected_vis[np.ix_(no_face, [SCALARS.index(f) for f in schema.FACE_FIELDS])] = 0.0  # no face: zeros
    expected_vis[~np.isfinite(expected_vis)] = np.nan
    assert_same_with_nan(v.values.astype(np.float64), expected_vis)
    assert v.values.dtype == np.float32 and v.clip.dtype == np.float16 and v.clip.shape == (len(visual), 512)
    np.testing.assert_array_equal(v.clip, visual[CLIPS].to_numpy(np.float32).astype(np.float16))
    assert v.issues.nonfinite == {
        c: int(n) for c, n in zip(SCALARS, np.isnan(expected_vis).sum(axis=0)) if n
    }
    assert v.width == schema.VISUAL_WIDTH and a.width == schema.AUDIO_WIDTH


# --- property 14 ---------------------------------------------------------------


def decoy_names(vid: str) -> list[str]:
    """Names close to a video's own file names that must not be taken for them."""
    return [
        f"{vid} 2_features.csv",
        f"{vid} 2_visual_features.csv",
        f"{vid}_features.csv.bak",
        f"x{vid}_visual_features.csv",
        f"{vid}_Features.csv",
        f"{vid.upper()}_features.csv",
        f"{vid}_features.csv ",
    ]


@given(ids=distinct_video_ids(min_size=1, max_size=4), data=st.data())
def test_property_14_exact_video_id_naming(ids: list[str], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        features = Path(tmp) / schema.FEATURES_DIR
        features.mkdir()
        created: set[str] = set()
        for vid in ids:
            own = [schema.audio_file_name(vid)] * data.draw(st.booleans()) + [
                schema.visual_file_name(vid)
            ] * data.draw(st.booleans())
            for name in own + decoy_names(vid):
                (features / name).write_text("time\n", encoding="utf-8")
                created.add(name)
        found = discover_features(tmp, ids)
        assert list(found) == ids
        for vid in ids:
            a, v = schema.audio_file_name(vid), schema.visual_file_name(vid)
            assert found[vid] == FeatureFiles(
                audio=features / a if a in created else None,
                visual=features / v if v in created else None,
            )
            for path in (found[vid].audio, found[vid].visual):
                assert path is None or path.is_file()


def test_property_14_pinned_prefix_and_glob_ids(tmp_path: Path) -> None:
    """`foo` must not take `foo 2`'s files; glob characters in ids are literal."""
    features = tmp_path / schema.FEATURES_DIR
    features.mkdir()
    for name in ("foo 2_features.csv", "foo 2_visual_features.csv", "a1_features.csv"):
        (features / name).write_text("time\n")
    found = discover_features(tmp_path, ["foo", "foo 2", "a[0-9]", "a?"])
    assert found["foo"] == FeatureFiles(None, None)
    assert found["foo 2"] == FeatureFiles(features / "foo 2_features.csv", features / "foo 2_visual_features.csv")
    assert found["a[0-9]"] == FeatureFiles(None, None) and found["a?"] == FeatureFiles(None, None)


# --- properties 22 and 25 -----------------------------------------------------


def _make_features(tmp: Path, ids: list[str], data: st.DataObject) -> dict[str, list[str]]:
    """Create some of each video's files; returns the missing types per video."""
    features = tmp / schema.FEATURES_DIR
    features.mkdir(exist_ok=True)
    missing = {}
    for vid in ids:
        has = {"audio": data.draw(st.booleans()), "visual": data.draw(st.booleans())}
        if has["audio"]:
            (features / schema.audio_file_name(vid)).write_text("time\n")
        if has["visual"]:
            (features / schema.visual_file_name(vid)).write_text("time\n")
        missing[vid] = [m for m in ("audio", "visual") if not has[m]]
    return missing


@given(ids=distinct_video_ids(min_size=1, max_size=5), data=st.data())
def test_property_22_logs_feature_file_count(ids: list[str], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp, capture_logs("trackfusion.io.features") as records:
        missing = _make_features(Path(tmp), ids, data)
        (Path(tmp) / schema.FEATURES_DIR / "unrelated recording_features.csv").write_text("time\n")
        discover_features(tmp, ids)
    n_audio = sum("audio" not in m for m in missing.values())
    n_visual = sum("visual" not in m for m in missing.values())
    counts = [
        tuple(int(x) for x in m.groups())
        for r in records
        if r.name == "trackfusion.io.features" and r.levelno == logging.INFO
        and (m := re.search(r"found (\d+) feature files \((\d+) audio, (\d+) visual\)", r.getMessage()))
    ]
    assert counts == [(n_audio + n_visual, n_audio, n_visual)]


@given(ids=distinct_video_ids(min_size=1, max_size=5), data=st.data())
def test_property_25_logs_missing_types(ids: list[str], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp, capture_logs("trackfusion.io.features") as records:
        missing = _make_features(Path(tmp), ids, data)
        found = discover_features(tmp, ids)
    warned = {
        r.video_id: r for r in records if r.levelno == logging.WARNING and hasattr(r, "video_id")
    }
    assert set(warned) == {vid for vid, m in missing.items() if m}
    for vid, record in warned.items():
        assert record.missing == missing[vid] == found[vid].missing
        text = record.getMessage()
        assert f"'{vid}'" in text
        listed = text.split("missing feature files: ", 1)[1].split(" (expected", 1)[0]
        assert listed == ", ".join(missing[vid])


def test_discover_without_features_folder_warns(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="trackfusion.io.features"):
        found = discover_features(tmp_path, [VID])
    assert found[VID] == FeatureFiles(None, None)
    assert any("no features folder" in r.getMessage() for r in caplog.records)
    assert any(getattr(r, "video_id", None) == VID for r in caplog.records)


# --- reading: what is fixed and counted ----------------------------------------


def test_unsorted_and_duplicate_times_are_fixed_counted_and_warned(tmp_path: Path, caplog) -> None:
    path = audio_file(
        tmp_path,
        "0.0,0.1,1,0,A,0,\n"
        "0.2,0.3,1,0,A,0,\n"
        "0.1,0.2,1,0,B,0,\n"  # out of order
        "0.2,9.9,1,0,A,0,\n"  # repeats 0.2: the first (0.3) is kept
        "0.3,0.4,0,0,,0,\n",
    )
    with caplog.at_level(logging.WARNING, logger="trackfusion.io.features"):
        table = read_audio_csv(path)
    np.testing.assert_array_equal(table.times, [0.0, 0.1, 0.2, 0.3])
    np.testing.assert_allclose(table.values[:, 0], [0.1, 0.2, 0.3, 0.4], rtol=1e-6)
    assert table.issues.unsorted_rows == 1 and table.issues.duplicate_rows == 1
    # turns follow time order: A (0.0), B (0.1) is a turn, A (0.2) is a turn
    assert table.values[:, 4].tolist() == [0.0, 1.0, 1.0, 0.0]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(path) in m and "out of time order" in m and "data row 3" in m for m in messages)
    assert any(str(path) in m and "repeat an earlier time" in m for m in messages)


def test_empty_and_infinite_values_are_nan_and_counted(tmp_path: Path) -> None:
    path = audio_file(tmp_path, "0.0,,1,inf,A,0,\n0.1,-inf,,5,A,1,\n0.2,0.5,1,nan,,NA,\n")
    table = read_audio_csv(path)
    assert np.isnan(table.values[:, 0]).tolist() == [True, True, False]
    assert np.isnan(table.values[:, 2]).tolist() == [True, False, True]
    assert table.issues.nonfinite == {
        "audio_energy_rms": 2, "audio_is_speaking": 1, "silence_duration_ms": 2, "text_is_active": 1,
    }
    assert table.issues.nonfinite_total == 6


def test_visual_face_fields_zero_without_face_and_missing_elsewhere(tmp_path: Path) -> None:
    table = _visual_fixed(3, seed=1)
    table.loc[0, schema.FACE_COUNT] = 0
    table.loc[0, list(schema.FACE_FIELDS)] = np.nan  # no face: empty face fields are normal
    table.loc[1, "face_size"] = np.nan  # a face without a size: a missing sample
    table.loc[2, "saliency_x"] = np.inf
    table.loc[1, "clip_7"] = np.nan
    v = read_visual_csv(write_table(tmp_path / schema.visual_file_name(VID), table))
    face = [SCALARS.index(f) for f in schema.FACE_FIELDS]
    assert (v.values[0, face] == 0).all()
    assert np.isnan(v.values[1, SCALARS.index("face_size")])
    assert np.isnan(v.values[2, SCALARS.index("saliency_x")]) and np.isnan(v.clip[1, 7])
    assert v.issues.nonfinite == {"face_size": 1, "saliency_x": 1, "clip_7": 1}


def test_visual_columns_in_any_file_order(tmp_path: Path) -> None:
    table = _visual_fixed(3, seed=2)
    shuffled = table[list(reversed(VISUAL_COLUMNS))]
    v = read_visual_csv(write_table(tmp_path / "v.csv", shuffled))
    np.testing.assert_allclose(v.values, table[SCALARS].to_numpy(np.float32))
    np.testing.assert_array_equal(v.clip, table[CLIPS].to_numpy(np.float32).astype(np.float16))


def test_free_text_never_breaks_parsing(tmp_path: Path) -> None:
    body = (
        '0.0,0.1,1,0,話者 1,1,"こんにちは、世界, そして ""引用"""\n'
        '0.1,0.2,1,0,話者 2,1,"複数行の\nテキスト, です"\n'
        "0.2,0.3,0,0,,0,plain\n"
    )
    table = read_audio_csv(audio_file(tmp_path, body))
    np.testing.assert_allclose(table.times, [0.0, 0.1, 0.2])
    assert table.values[:, 4].tolist() == [0.0, 1.0, 0.0]


def test_speaker_turns_reference() -> None:
    ids = ["A", None, "A", "", "B", 1, "1.0", 2.0, " 2 ", np.nan, "B"]
    assert speaker_turns(ids).tolist() == ref_speaker_turns(ids) == [0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 1]


# --- reading: errors (SPEC section 8) -------------------------------------------


def read_error(path: Path, reader=read_audio_csv) -> FeatureFileError:
    with pytest.raises(FeatureFileError) as info:
        reader(path)
    assert str(path) in str(info.value), "the message must name the file"
    return info.value


def test_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    err = read_error(tmp_path / schema.audio_file_name(VID))
    assert "not found" in str(err)


@pytest.mark.parametrize("content", [b"", b"  \n\n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / schema.audio_file_name(VID)
    path.write_bytes(content)
    assert "empty" in str(read_error(path))


def test_header_only(tmp_path: Path) -> None:
    err = read_error(audio_file(tmp_path, ""))
    assert "no data rows" in str(err)


def test_a_header_field_over_the_csv_limit_is_a_feature_file_error(tmp_path: Path) -> None:
    """Issue 12: a header field over 131,072 characters raised `_csv.Error` and took align down."""
    path = tmp_path / schema.audio_file_name(VID)
    path.write_text(AUDIO_HEADER + ',"' + "x" * 200_000 + '"\n0.0,0.1,0,0,,0,\n', encoding="utf-8")
    err = read_error(path)
    assert "header" in str(err) and len(str(err)) < 2_000


def test_a_huge_bad_value_is_quoted_short(tmp_path: Path) -> None:
    """Issue 12: a 100 MB cell became a 105 MB metrics/validation.json and log lines."""
    rows = "0.0,0.1,0,0,,0,\n" + "0.1," + "y" * 1_000_000 + ",0,0,,0,\n"
    err = read_error(audio_file(tmp_path, rows))
    assert "audio_energy_rms" in str(err) and "1,000,002 characters" in str(err) and len(str(err)) < 2_000


def test_corrupt_binary_file(tmp_path: Path) -> None:
    path = tmp_path / schema.visual_file_name(VID)
    path.write_bytes(b"PK\x03\x04\x00\x00" + bytes(range(256)) * 4)
    assert "corrupt" in str(read_error(path, read_visual_csv))


def test_corrupt_non_utf8_header(tmp_path: Path) -> None:
    path = tmp_path / schema.visual_file_name(VID)
    path.write_bytes(b"\xff\xfe\xfa garbage\n1,2\n")
    assert "not UTF-8" in str(read_error(path, read_visual_csv))


def test_truncated_mid_row(tmp_path: Path) -> None:
    path = write_table(tmp_path / schema.visual_file_name(VID), _visual_fixed(5, seed=3))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - len(data.splitlines()[-1]) // 2])  # cut the last row in half
    err = read_error(path, read_visual_csv)
    assert err.row == 5 and "data row 5" in str(err) and "truncated" in str(err)
    assert f"expected {len(VISUAL_COLUMNS)} fields" in str(err)


def test_truncated_inside_quoted_text(tmp_path: Path) -> None:
    err = read_error(audio_file(tmp_path, '0.0,0.1,1,0,A,1,"ok"\n0.1,0.2,1,0,A,1,"こんに'))
    assert "data row 2" in str(err)


def test_short_row_in_the_middle_is_not_missing_samples(tmp_path: Path) -> None:
    err = read_error(audio_file(tmp_path, "0.0,0.1,1,0,A,1,x\n0.1,0.2,1\n0.2,0.3,1,0,A,1,y\n"))
    assert err.row == 2 and "has 3 fields" in str(err) and "truncated" not in str(err)


def test_row_with_extra_fields(tmp_path: Path) -> None:
    err = read_error(audio_file(tmp_path, "0.0,0.1,1,0,A,1,x\n0.1,0.2,1,0,A,1,y,extra\n"))
    assert err.row == 2 and "has 8 fields" in str(err)


def test_wrong_column_name(tmp_path: Path) -> None:
    path = tmp_path / schema.audio_file_name(VID)
    path.write_text(AUDIO_HEADER.replace("audio_energy_rms", "audio_rms") + "\n0,1,1,0,A,1,x\n")
    err = read_error(path)
    text = str(err)
    assert err.column == "audio_energy_rms" and err.missing == ("audio_energy_rms",)
    assert "missing column(s) audio_energy_rms" in text and "unexpected column(s) audio_rms" in text
    assert "expected columns time, audio_energy_rms" in text


def test_missing_visual_columns_named(tmp_path: Path) -> None:
    table = _visual_fixed(2, seed=4).drop(columns=["clip_100", "clip_511", "face_size"])
    err = read_error(write_table(tmp_path / schema.visual_file_name(VID), table), read_visual_csv)
    assert set(err.missing) == {"clip_100", "clip_511", "face_size"}
    assert "face_size" in str(err) and "clip_100" in str(err) and "523 columns" in str(err)


def test_repeated_column(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(AUDIO_HEADER + ",time\n0,1,1,0,A,1,x,0\n")
    err = read_error(path)
    assert err.column == "time" and "more than once" in str(err)


@pytest.mark.parametrize("column", ["visual_motion", "clip_300", "time"])
def test_non_numeric_text_names_column_and_row(tmp_path: Path, column: str) -> None:
    table = _visual_fixed(4, seed=5).astype(object)
    table.loc[2, column] = "abc"
    err = read_error(write_table(tmp_path / schema.visual_file_name(VID), table), read_visual_csv)
    assert err.column == column and err.row == 3
    assert f"column '{column}'" in str(err) and "data row 3" in str(err) and "'abc'" in str(err)


def test_non_numeric_audio_value(tmp_path: Path) -> None:
    err = read_error(audio_file(tmp_path, "0.0,0.1,1,0,A,1,x\n0.1,0.2,yes,0,A,1,y\n"))
    assert err.column == "audio_is_speaking" and err.row == 2


@pytest.mark.parametrize("value, what", [("", "empty"), ("inf", "inf")])
def test_missing_or_infinite_time(tmp_path: Path, value: str, what: str) -> None:
    err = read_error(audio_file(tmp_path, f"0.0,0.1,1,0,A,1,x\n{value},0.2,1,0,A,1,y\n"))
    assert err.column == "time" and err.row == 2 and what in str(err)


# --- sequences and strategies --------------------------------------------------


def test_sequence_reader_width(tmp_path: Path) -> None:
    write_sequences(tmp_path / "s.npz", [TrackData(VID, 1.5, np.zeros((3, schema.TRACK_WIDTH), np.float32))])
    reader = SequenceReader(tmp_path / "s.npz")
    assert reader.width == 180 and reader.read(VID).shape == (3, 180) and reader.start_time(VID) == 1.5


def _replace_member(path: Path, name: str, payload: bytes) -> None:
    import zipfile

    members = {}
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members[name] = payload
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)


def test_an_npz_member_declaring_more_than_it_holds_is_refused_before_allocating(tmp_path: Path) -> None:
    """Issue 12: a 5.8 MB npz declaring a 5.6 GiB array allocated ~6 GB, then MemoryError."""
    import io as _io

    path = tmp_path / "s.npz"
    write_sequences(path, [TrackData(VID, 1.5, np.zeros((3, schema.TRACK_WIDTH), np.float32))])
    buf = _io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10**9,)})
    _replace_member(path, "start_times.npy", buf.getvalue() + b"\0" * 64)
    with pytest.raises(TrackSequenceError, match="declares 8,000,000,000 bytes"):
        SequenceReader(path)


def test_object_frames_are_a_track_sequence_error(tmp_path: Path) -> None:
    """Issue 12: an npz whose frames is an object array gave a traceback."""
    import io as _io

    path = tmp_path / "s.npz"
    write_sequences(path, [TrackData(VID, 1.5, np.zeros((3, schema.TRACK_WIDTH), np.float32))])
    buf = _io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": (3, 180)})
    _replace_member(path, "frames.npy", buf.getvalue() + b"\0" * (3 * 180 * 8))
    with pytest.raises(TrackSequenceError, match="frames must hold numbers"):
        SequenceReader(path)


@given(times=sample_times(min_size=2, max_size=20, jitter_s=0.04, max_gaps=2))
def test_strategy_sample_times_strictly_increasing(times: np.ndarray) -> None:
    assert (np.diff(times) > 0).all()
    assert (np.diff(times) <= 8.0 + 1e-9).all()


@given(ids=distinct_video_ids(min_size=2, max_size=4))
def test_strategy_video_ids_have_distinct_file_names(ids: list[str]) -> None:
    names = {schema.audio_file_name(v) for v in ids} | {schema.visual_file_name(v) for v in ids}
    assert len(names) == 2 * len(ids)


# --- the kept flag (issue 21) -----------------------------------------------------------
@st.composite
def kept_videos(draw):
    """Videos whose edits drop random stretches: dropped frames all zero, kept ones anything."""
    videos = []
    for i in range(draw(st.integers(1, 4))):
        n = draw(st.integers(1, 30))
        kept = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), np.uint8)
        frames = np.random.default_rng(i).normal(size=(n, schema.TRACK_WIDTH)).astype(np.float32)
        frames[kept == 0] = 0.0
        videos.append(TrackData(f"video {i}", 0.5 * i, frames, kept))
    return videos


@given(videos=kept_videos())
def test_kept_flags_round_trip_and_a_file_that_removes_nothing_has_none(tmp_path_factory, videos):
    path = tmp_path_factory.mktemp("kept") / "s.npz"
    write_sequences(path, videos)
    reader = SequenceReader(path)
    for v in videos:
        got = reader.track(v.video_id)
        np.testing.assert_array_equal(got.kept_flags, v.kept_flags)
        np.testing.assert_array_equal(got.frames, v.frames)
        assert got.removes == v.removes
    with np.load(path) as npz:
        assert (schema.SEQUENCE_KEPT in npz.files) == any(v.removes for v in videos)


def test_a_file_without_kept_keeps_every_frame_and_is_written_as_before(tmp_path):
    frames = np.ones((4, schema.TRACK_WIDTH), np.float32)
    write_sequences(tmp_path / "a.npz", [TrackData(VID, 0.0, frames)])
    write_sequences(tmp_path / "b.npz", [TrackData(VID, 0.0, frames, np.ones(4, np.uint8))])
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert SequenceReader(tmp_path / "a.npz").kept(VID).tolist() == [1, 1, 1, 1]


def test_a_dropped_frame_with_track_values_is_refused_when_written_and_when_read(tmp_path):
    frames = np.ones((3, schema.TRACK_WIDTH), np.float32)
    with pytest.raises(ValueError, match="dropped frame"):
        TrackData(VID, 0.0, frames, np.array([1, 0, 1], np.uint8))
    path = tmp_path / "s.npz"
    np.savez(path, video_ids=np.array([VID]), offsets=np.array([0]), lengths=np.array([3]),
             start_times=np.array([0.0]), frames=frames, kept=np.array([1, 0, 1], np.uint8))
    with pytest.raises(TrackSequenceError, match="dropped frame"):
        SequenceReader(path).track(VID)
    np.savez(path, video_ids=np.array([VID]), offsets=np.array([0]), lengths=np.array([3]),
             start_times=np.array([0.0]), frames=frames, kept=np.array([1, 2, 1], np.uint8))
    with pytest.raises(TrackSequenceError, match="kept must be"):
        SequenceReader(path)
