"""The synthetic corpus: determinism, the raw contract, the faults, and an editor who cuts on content."""
from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies.synthetic import synthetic_params
from trackfusion import cli, cuts, schema
from trackfusion.data import synthetic
from trackfusion.io.sequences import SequenceReader
from trackfusion.params import SyntheticParams, params_from_dict

FPS = 10
PARAMS = SyntheticParams(seed=3, num_videos=8, min_duration_s=40.0, max_duration_s=70.0)
AUDIO_NAMES = schema.input_names(schema.AUDIO_FILE_COLUMNS)
VISUAL_NAMES = schema.input_names(schema.VISUAL_FILE_COLUMNS)
CLIP_NAMES = schema.input_names(schema.CLIP_COLUMNS)
FACE_NAMES = list(schema.FACE_FIELDS)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synthetic") / "corpus dir"  # a space in the path on purpose
    return out, synthetic.generate_corpus(out, PARAMS, fps=FPS)


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _read_audio(path: Path) -> pd.DataFrame:
    text = (schema.SPEAKER_ID, schema.TEXT_WORD)  # empty stays "" there; elsewhere empty is NaN
    return pd.read_csv(path, keep_default_na=False, na_values={c: [""] for c in AUDIO_NAMES if c not in text})


def _clean(table: pd.DataFrame) -> pd.DataFrame:
    """What a reader does first (SPEC section 8): sort by time, keep the first of duplicate times."""
    return table.sort_values(schema.TIME, kind="stable").drop_duplicates(schema.TIME).reset_index(drop=True)


def _missing(summary: dict, kind: str) -> set[str]:
    return set(summary["faults"][kind])


# --- determinism -----------------------------------------------------------------
def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    params = SyntheticParams(seed=11, num_videos=6, min_duration_s=8.0, max_duration_s=12.0)
    a = synthetic.generate_corpus(tmp_path / "a", params)
    b = synthetic.generate_corpus(tmp_path / "b", params)
    c = synthetic.generate_corpus(tmp_path / "c", SyntheticParams(**{**params.__dict__, "seed": 12}))
    files_a, files_b, files_c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert a == b
    assert files_a == files_b
    assert len(files_a) >= 10
    assert files_a[schema.SEQUENCES_FILE] != files_c[schema.SEQUENCES_FILE]
    assert set(files_a) != set(files_c)  # other video ids
    assert a["fault_details"] != c["fault_details"]


def test_a_video_does_not_depend_on_the_others(tmp_path: Path) -> None:
    def params(n: int) -> SyntheticParams:
        return SyntheticParams(seed=5, num_videos=n, min_duration_s=5, max_duration_s=9)

    small = synthetic.generate_corpus(tmp_path / "s", params(2))
    big = synthetic.generate_corpus(tmp_path / "b", params(4))  # another fault plan, same first videos
    assert big["video_ids"][:2] == small["video_ids"]
    rs = SequenceReader(tmp_path / "s" / schema.SEQUENCES_FILE)
    rb = SequenceReader(tmp_path / "b" / schema.SEQUENCES_FILE)
    vid = small["video_ids"][0]
    np.testing.assert_array_equal(rs.read(vid), rb.read(vid))
    assert rs.start_time(vid) == rb.start_time(vid)


# --- the raw contract ----------------------------------------------------------------
def test_files_exist_with_exact_names(corpus: tuple[Path, dict]) -> None:
    out, summary = corpus
    expected = {schema.SEQUENCES_FILE, synthetic.CEILING_FILE, schema.CEILING_LAYOUT_FILE}
    for vid in summary["video_ids"]:
        assert " " in vid and "-" in vid
        if vid not in _missing(summary, "no_audio_file"):
            expected.add(f"{schema.FEATURES_DIR}/{schema.audio_file_name(vid)}")
        if vid not in _missing(summary, "no_visual_file"):
            expected.add(f"{schema.FEATURES_DIR}/{schema.visual_file_name(vid)}")
    assert set(_files(out)) == expected
    assert len(set(summary["video_ids"])) == PARAMS.num_videos


def test_track_sequences_follow_the_layout(corpus: tuple[Path, dict]) -> None:
    out, summary = corpus
    reader = SequenceReader(out / schema.SEQUENCES_FILE)
    assert reader.video_ids == summary["video_ids"]
    total = 0
    for vid in reader.video_ids:
        track = reader.read(vid)
        total += len(track)
        assert track.shape[1] == schema.TRACK_WIDTH == 180
        assert PARAMS.min_duration_s * FPS - 1 <= len(track) <= PARAMS.max_duration_s * FPS + 1
        assert 0.0 <= reader.start_time(vid) <= 3.0
        frames = track.reshape(len(track), schema.NUM_TRACKS, schema.NUM_TRACK_PARAMS)  # (T, 20, 9)
        active = frames[:, :, schema.param_index("active")]
        asset = frames[:, :, schema.param_index("asset_id")]
        assert set(np.unique(active)) <= {0.0, 1.0}
        assert np.all(asset == np.round(asset)) and asset.min() >= 0 and asset.max() < schema.NUM_ASSET_CLASSES
        assert np.all(frames[active == 0] == 0), "inactive tracks must have all parameters zero"
        on = active == 1
        scale = frames[:, :, schema.param_index("scale")]
        crops = frames[:, :, schema.param_index("crop_l") :]
        assert np.all(scale[on] > 0) and np.all(scale[on] <= 180)
        assert np.all((crops[on] >= 0) & (crops[on] <= 30))
        kept = reader.kept(vid).astype(bool)
        assert np.all(active[kept, 0] == 1), "main footage is always on in the edit"
        assert not track[~kept].any(), "a dropped frame holds zeros"
        assert not active[:, 5:].any(), "tracks 5-19 stay inactive"
    assert total == summary["frames"] and summary["seconds"] == pytest.approx(total / FPS)


def test_audio_files_follow_the_contract(corpus: tuple[Path, dict]) -> None:
    out, summary = corpus
    captions = 0
    for vid in set(summary["video_ids"]) - _missing(summary, "no_audio_file"):
        path = out / schema.FEATURES_DIR / schema.audio_file_name(vid)
        raw = path.read_text(encoding="utf-8")
        audio = _read_audio(path)
        assert list(audio.columns) == AUDIO_NAMES
        steps = np.diff(np.sort(audio[schema.TIME].to_numpy()))
        assert np.median(steps) == pytest.approx(0.1, abs=0.005)
        assert steps.std() > 0, "sample times are jittered"
        assert (audio[schema.SPEAKER_ID] == "").mean() > 0.15, "speaker_id is often empty"
        assert set(audio["audio_is_speaking"].dropna()) <= {0, 1} and set(audio["text_is_active"].dropna()) <= {0, 1}
        texts = audio.loc[audio["text_is_active"] == 1, schema.TEXT_WORD]
        assert set(texts) <= set(synthetic.CAPTIONS)
        for text in set(texts):
            if "," in text:  # quoted by the writer, back whole through read_csv
                captions += 1
                assert '"' + text.replace('"', '""') + '"' in raw
    assert captions > 0


def test_visual_files_follow_the_contract(corpus: tuple[Path, dict]) -> None:
    out, summary = corpus
    for vid in set(summary["video_ids"]) - _missing(summary, "no_visual_file"):
        visual = pd.read_csv(out / schema.FEATURES_DIR / schema.visual_file_name(vid))
        assert list(visual.columns) == VISUAL_NAMES and len(visual.columns) == 1 + schema.VISUAL_WIDTH
        t = visual[schema.TIME].to_numpy()
        off_grid = np.abs(t * 10 - np.round(t * 10)) / 10
        assert off_grid.min() >= 0.002, "visual times are never on the 0.1 s grid"
        assert np.median(np.diff(np.sort(t))) == pytest.approx(1 / 12, abs=0.005)
        assert 0.1 < visual["saliency_x"].isna().mean() < 0.6
        no_face = visual[schema.FACE_COUNT] == 0
        assert no_face.any() or visual[FACE_NAMES].isna().any().any()
        assert visual.loc[no_face, FACE_NAMES].isna().all().all(), "face fields are empty where face_count is 0"
        assert visual.loc[~no_face, FACE_NAMES].isna().any(axis=1).mean() > 0.05
        clip = visual[CLIP_NAMES].to_numpy()
        norms = np.linalg.norm(clip, axis=1)
        assert np.all(np.abs(norms - 1.0) > 1.0), "CLIP vectors are not unit length"
        held = np.unique(clip, axis=0)
        seconds = t.max() - t.min()
        assert 0.6 * seconds <= len(held) <= 1.6 * seconds + 10, "CLIP is refreshed about once a second"
        sc = visual["scene_change"].to_numpy()
        assert np.nanmax(sc) > 0.9 and np.nanmedian(sc) < 0.1


# --- faults ---------------------------------------------------------------------------
def test_faults_are_present_and_listed(corpus: tuple[Path, dict]) -> None:
    out, summary = corpus
    faults = summary["faults"]
    assert set(faults) == set(synthetic.FAULT_KINDS)
    assert all(len(v) >= 1 for v in faults.values()), faults
    assert _missing(summary, "no_audio_file").isdisjoint(_missing(summary, "no_visual_file"))
    n_faulty = len({v for vids in faults.values() for v in vids})
    assert n_faulty <= PARAMS.num_videos  # modest: spread, not piled on one video
    feat = out / schema.FEATURES_DIR
    reader = SequenceReader(out / schema.SEQUENCES_FILE)

    def table(d: dict) -> pd.DataFrame:
        name = schema.audio_file_name if d["file"] == "audio" else schema.visual_file_name
        return pd.read_csv(feat / name(d["video_id"]), keep_default_na=False, na_values=[""])

    for d in summary["fault_details"]:
        vid, kind = d["video_id"], d["kind"]
        if kind == "no_audio_file":
            assert not (feat / schema.audio_file_name(vid)).exists()
            continue
        if kind == "no_visual_file":
            assert not (feat / schema.visual_file_name(vid)).exists()
            continue
        tab = table(d)
        t = tab[schema.TIME].to_numpy()
        ts = np.unique(t)
        start = reader.start_time(vid)
        end = start + (len(reader.read(vid)) - 1) / FPS
        if kind == "gap":
            assert np.diff(ts).max() >= min(1.0, d["to_s"] - d["from_s"] - 0.2)
            assert not np.any((t > d["from_s"] + 0.01) & (t < d["to_s"] - 0.01))
        elif kind == "late_start":
            assert t.min() >= d["first_time_s"] - 1e-3 and t.min() > start + 1.0
        elif kind == "early_end":
            assert t.max() <= d["last_time_s"] + 1e-3 and t.max() < end - 1.0
        elif kind == "irregular_times":
            assert np.diff(ts).std() > 0.01
        elif kind == "unsorted_rows":
            assert np.any(np.diff(t) < 0)
        elif kind == "duplicate_time":
            assert len(ts) < len(t) and np.count_nonzero(t == d["time_s"]) >= 1
        elif kind == "nonfinite_values":
            for cell in d["cells"]:
                col = tab[cell["column"]].to_numpy(dtype=float)
                assert (~np.isfinite(col)).any()
            if any(c["value"] == "inf" for c in d["cells"]):
                assert np.isinf(tab.drop(columns=schema.TIME).to_numpy(dtype=float)).any()


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_small_corpora_are_valid_with_faults_only_where_there_are_enough_videos(tmp_path: Path, n: int) -> None:
    params = SyntheticParams(seed=1, num_videos=n, min_duration_s=3, max_duration_s=6)
    summary = synthetic.generate_corpus(tmp_path / "c", params)
    reader = SequenceReader(tmp_path / "c" / schema.SEQUENCES_FILE)
    assert len(reader) == n == summary["videos"]
    listed = {k for k, v in summary["faults"].items() if v}
    assert listed == ({"no_visual_file"} if n == 3 else {"no_visual_file", "no_audio_file"} if n >= 4 else set())
    feature_files = list((tmp_path / "c" / schema.FEATURES_DIR).iterdir())
    assert len(feature_files) == 2 * n - len(listed)


# --- the editor cuts on content -----------------------------------------------------
def _content_event_frames(audio: pd.DataFrame, visual: pd.DataFrame, start: float, n: int) -> np.ndarray:
    """(n,) bool: frames on which a content event is seen in the files (speaker turn, text on/off,
    scene change onset, motion burst on/off), derived from the CSVs alone."""
    audio, visual = _clean(audio), _clean(visual)
    times = []
    spk = audio[schema.SPEAKER_ID].replace("", np.nan).ffill()
    turn = audio[schema.SPEAKER_ID].ne("") & spk.ne(spk.shift()) & spk.shift().notna()
    times.append(audio.loc[turn, schema.TIME])
    text = audio["text_is_active"].fillna(0).to_numpy()
    times.append(audio[schema.TIME][1:][np.diff(text) != 0])
    scene = np.nan_to_num(visual["scene_change"].to_numpy(), posinf=0) > 0.5
    times.append(visual[schema.TIME][1:][scene[1:] & ~scene[:-1]])
    motion = np.nan_to_num(visual["visual_motion"].to_numpy(), posinf=0) > 0.4
    times.append(visual[schema.TIME][1:][motion[1:] != motion[:-1]])
    frames = np.round((np.concatenate([np.asarray(x, float) for x in times]) - start) * FPS).astype(int)
    events = np.zeros(n, bool)
    events[frames[(frames >= 0) & (frames < n)]] = True
    return events


def _explained(points: np.ndarray, events: np.ndarray) -> np.ndarray:
    """For each frame in `points`: is there a content event from 3 frames before it to 1 frame after?

    One frame after, because a file's sample of an event can fall just past the frame on
    which the editor reacted with no lag."""
    padded = np.concatenate([np.zeros(3, bool), events, np.zeros(1, bool)])  # frame f at f + 3
    near = np.zeros(len(events), bool)
    for shift in range(-1, 4):  # an event at f - shift
        near |= padded[3 - shift : 3 - shift + len(events)]
    return near[points]


def test_cuts_follow_content_events(corpus: tuple[Path, dict]) -> None:
    """Cuts fall right after content events far more often than random frames do, and a
    content-blind editor (the same cuts, shifted in time) would fail the same check."""
    out, summary = corpus
    reader = SequenceReader(out / schema.SEQUENCES_FILE)
    rng = np.random.default_rng(0)
    hit, n_cuts, base, n_frames, blind, n_blind = 0, 0, 0.0, 0, 0, 0
    incomplete = _missing(summary, "no_audio_file") | _missing(summary, "no_visual_file")
    for vid in [v for v in summary["video_ids"] if v not in incomplete]:
        track = reader.read(vid)
        feat = out / schema.FEATURES_DIR
        events = _content_event_frames(
            _read_audio(feat / schema.audio_file_name(vid)),
            pd.read_csv(feat / schema.visual_file_name(vid)),
            reader.start_time(vid),
            len(track),
        )
        kept = reader.kept(vid).astype(bool)
        cut_at = cuts.video_cut_events(track)
        cut_at = cut_at[kept[cut_at] & kept[cut_at - 1]]  # the layout's own cuts, not the edit's jumps
        hit += int(_explained(cut_at, events).sum())
        n_cuts += len(cut_at)
        base += float(_explained(np.arange(len(track)), events).sum())
        n_frames += len(track)
        shifted = (cut_at + rng.integers(50, len(track) - 50)) % len(track)  # same rhythm, blind to content
        blind += int(_explained(shifted, events).sum())
        n_blind += len(shifted)
    assert n_cuts >= 20
    print(f"cuts explained {hit / n_cuts:.2f}, random frames {base / n_frames:.2f}, blind {blind / n_blind:.2f}")
    cut_rate, random_rate, blind_rate = hit / n_cuts, base / n_frames, blind / n_blind
    assert cut_rate >= 0.7, (cut_rate, random_rate)
    assert random_rate <= 0.35 and cut_rate >= 2.5 * random_rate, (cut_rate, random_rate)
    assert blind_rate <= 1.5 * random_rate + 0.05, (blind_rate, random_rate)  # the test has power


def test_cut_intervals_are_irregular(corpus: tuple[Path, dict]) -> None:
    out, summary = corpus
    reader = SequenceReader(out / schema.SEQUENCES_FILE)
    gaps = np.concatenate([np.diff(cuts.video_cut_events(reader.read(v))) for v in summary["video_ids"]])
    assert gaps.std() / gaps.mean() > 0.6  # no fixed rhythm
    per_minute = summary["cuts"] / (summary["seconds"] / 60)
    assert 5 <= per_minute <= 30


def test_cut_events_on_the_spec_example() -> None:
    track = np.zeros((5, schema.NUM_TRACKS, schema.NUM_TRACK_PARAMS), np.float32)
    a, s = schema.param_index("active"), schema.param_index("scale")
    track[:, 0, a] = 1
    track[2:, 0, s] = 150  # a zoom is not a cut
    track[3:, 1, a] = 1  # a track turning on is
    track[4, 0, schema.param_index("asset_id")] = 4  # an active track's asset change is
    flat = track.reshape(5, -1)
    assert np.flatnonzero(cuts.video_cut_flags(flat)).tolist() == [3, 4]  # cut frames
    assert cuts.video_cut_events(flat).tolist() == [3]  # consecutive cut frames: one event, at its first frame


# --- the ceiling: the editor without its noise ----------------------------------------
def _small_video(seed: int, n_frames: int = 900) -> tuple[synthetic.Recording, synthetic.EditorStreams]:
    """A recording and today's editor's streams for it, from the package's own functions in
    generate_video's order (the editor goes on drawing from the recording stream)."""
    seconds = n_frames / FPS
    params = SyntheticParams(seed=seed, num_videos=1, min_duration_s=seconds, max_duration_s=seconds)
    rng = np.random.default_rng([seed, 99])
    recording = synthetic.simulate_recording(rng, 0, params, FPS, synthetic.clip_prototypes(seed))
    assert recording.n_frames == n_frames
    return recording, synthetic.EventEditor().streams(seed, 99, rng)


def _expected_ceiling(recording: synthetic.Recording, style: synthetic.Style) -> np.ndarray:
    """Every content event at the base lag, inside the video, runs of frames merged to their first frame."""
    c, n = recording.content, recording.n_frames
    first_shown = max(int(np.searchsorted(c.scene_starts, recording.start_time, side="right")) - 1, 0)
    times = np.concatenate(
        [c.scene_starts[first_shown + 1 :], c.speaker_turns, c.text_starts, c.text_ends, c.motion_starts, c.motion_ends]
    )
    frames = recording.time_map.first_frames_at(times) + style.lag
    frames = np.unique(frames[(frames >= 1) & (frames < n)])
    return frames[np.concatenate([[True], np.diff(frames) > 1])] if len(frames) else frames


@pytest.mark.parametrize("seed", range(6))
def test_ceiling_equals_the_editor_without_noise(seed: int) -> None:
    n = 900
    recording, streams = _small_video(seed, n)
    style = synthetic.sample_style(copy.deepcopy(streams.timeline))  # the editor's first draw
    track = synthetic.EventEditor().edit(recording, streams).noiseless
    frames = track.reshape(n, schema.NUM_TRACKS, schema.NUM_TRACK_PARAMS)
    assert not frames[:, synthetic.TRACK_STICKER].any(), "no stickers without noise"
    expected = _expected_ceiling(recording, style)
    assert len(expected) >= 10
    np.testing.assert_array_equal(cuts.video_cut_events(track), expected)
    # without noise the follow probabilities and the sticker rate are not consulted
    sure = dataclasses.replace(
        style,
        follow_scene=1.0, follow_turn=1.0, follow_text=1.0, follow_motion=1.0, follow_loud=1.0, sticker_rate=1e-9,
    )
    sure_track = synthetic.edit_timeline(recording, sure, np.random.default_rng(seed + 100), noise=False)
    np.testing.assert_array_equal(cuts.video_cut_events(sure_track), expected)


def test_noise_is_the_default_and_draws_the_same() -> None:
    recording, streams = _small_video(7, 600)
    style = synthetic.sample_style(streams.timeline)
    rng_a, rng_b = np.random.default_rng([7, 1]), np.random.default_rng([7, 1])
    default = synthetic.edit_timeline(recording, style, rng_a)
    explicit = synthetic.edit_timeline(recording, style, rng_b, noise=True)
    np.testing.assert_array_equal(default, explicit)
    assert rng_a.bit_generator.state == rng_b.bit_generator.state  # the same draws, so the stream goes on alike
    quiet = synthetic.edit_timeline(recording, style, np.random.default_rng([7, 1]), noise=False)
    assert not np.array_equal(default, quiet)


def test_another_editor_draws_from_streams_of_its_own() -> None:
    """Adding an editor moves neither the content nor today's editor: it never touches the recording stream."""

    class Replay(synthetic.Editor):  # today's rules, on the streams an editor gets by default
        tag = 3

        def edit(self, recording: synthetic.Recording, streams: synthetic.EditorStreams) -> synthetic.EditorOutput:
            return synthetic.EventEditor().edit(recording, streams)

    rng = np.random.default_rng([5, 0])
    recording = synthetic.simulate_recording(rng, 0, PARAMS, FPS, synthetic.clip_prototypes(5))
    state = rng.bit_generator.state
    other = Replay()
    first = other.edit(recording, other.streams(5, 0, rng))
    assert rng.bit_generator.state == state
    again = other.edit(recording, other.streams(5, 0, rng))
    np.testing.assert_array_equal(first.timeline, again.timeline)
    np.testing.assert_array_equal(first.noiseless, again.noiseless)
    today = synthetic.DEFAULT_EDITOR.edit(recording, synthetic.DEFAULT_EDITOR.streams(5, 0, rng))
    assert not np.array_equal(first.timeline, today.timeline)  # another stream, other habits


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**20))
def test_recorded_ceiling_is_sorted_unique_frames_inside_each_video(seed: int) -> None:
    params = SyntheticParams(seed=seed, num_videos=3, min_duration_s=20.0, max_duration_s=30.0)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "c"
        summary = synthetic.generate_corpus(out, params)
        ceiling = json.loads((out / synthetic.CEILING_FILE).read_text(encoding="utf-8"))
        reader = SequenceReader(out / schema.SEQUENCES_FILE)
        assert set(ceiling) == {"description", "tolerance_frames", "videos", "selection", "selection_at_length"}
        for key in ("selection", "selection_at_length"):
            assert list(ceiling[key]) == reader.video_ids
            for vid, segs in ceiling[key].items():
                n = len(reader.read(vid))
                flat = [f for seg in segs for f in seg]
                assert all(type(f) is int for f in flat) and flat == sorted(flat) and all(0 <= f <= n for f in flat)
                assert all(b > a for a, b in segs)
        assert isinstance(ceiling["description"], str) and ceiling["description"]
        assert ceiling["tolerance_frames"] == cuts.TOLERANCE == 5
        assert list(ceiling["videos"]) == reader.video_ids == summary["video_ids"]
        total = 0
        for vid, frames in ceiling["videos"].items():
            n = int(reader.kept(vid).sum())  # cut frames are the edit's: its kept frames in order
            assert all(type(f) is int for f in frames)
            assert frames == sorted(set(frames))
            assert all(1 <= f < n for f in frames)
            total += len(frames)
        assert summary["ceiling_cuts"] == total


# --- property: any small params give a valid corpus ------------------------------------
@settings(max_examples=12, deadline=None)
@given(params=synthetic_params(max_videos=7, max_duration_s=15.0))
def test_any_small_params_write_a_readable_corpus(params: SyntheticParams) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "c"
        summary = synthetic.generate_corpus(out, params)
        reader = SequenceReader(out / schema.SEQUENCES_FILE)
        assert reader.video_ids == summary["video_ids"] and len(reader) == params.num_videos
        for vid in reader.video_ids:
            n = len(reader.read(vid))
            assert max(2, round(params.min_duration_s * FPS) - 1) <= n <= max(2, round(params.max_duration_s * FPS) + 1)
        for path in (out / schema.FEATURES_DIR).iterdir():
            is_visual = path.name.endswith(schema.visual_file_name("x")[1:])
            names = VISUAL_NAMES if is_visual else AUDIO_NAMES
            table = pd.read_csv(path)
            assert list(table.columns) == names and len(table) > 0


@settings(max_examples=50, deadline=None)
@given(params=synthetic_params())
def test_strategy_gives_params_that_validate(params: SyntheticParams) -> None:
    assert params_from_dict({"synthetic": params.__dict__}).synthetic == params


# --- command line ---------------------------------------------------------------------
def _params_file(tmp_path: Path, **synthetic_keys: object) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"data": {"fps": 10}, "synthetic": synthetic_keys}))
    return path


def test_cli_generate_reads_params_and_writes_the_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = _params_file(tmp_path, seed=4, num_videos=3, min_duration_s=4, max_duration_s=5)
    out, summary = tmp_path / "out", tmp_path / "s.json"
    assert cli.main(["generate", "--params", str(params), "--out", str(out), "--summary", str(summary)]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["videos"] == 3 and printed["faults"]["no_visual_file"]
    assert json.loads(summary.read_text())["video_ids"] == printed["video_ids"]
    assert len(SequenceReader(out / schema.SEQUENCES_FILE)) == 3


def test_cli_rejects_bad_params_with_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = _params_file(tmp_path, num_videos=3, nmu_videos=2)
    with pytest.raises(SystemExit) as exc:
        cli.main(["generate", "--params", str(params), "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert "synthetic.nmu_videos" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_module_entry_point(tmp_path: Path) -> None:
    params = _params_file(tmp_path, seed=2, num_videos=1, min_duration_s=2, max_duration_s=3)
    run = subprocess.run(
        [sys.executable, "-m", "trackfusion.data.synthetic", "--params", str(params), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["videos"] == 1
    assert (tmp_path / "o" / schema.SEQUENCES_FILE).is_file()


# --- the highlight editor: what it keeps ------------------------------------------------
def _highlight(seed: int, n_frames: int = 1800):
    recording, streams = _small_video(seed, n_frames)
    editor = synthetic.HighlightEditor()
    return recording, editor, editor.streams(seed, 99, streams.timeline)


@pytest.mark.parametrize("seed", range(4))
def test_selection_ceiling_equals_the_editors_decisions_without_noise(seed: int) -> None:
    """Issue 22: the recorded selection ceiling is the editor's own decoding of the interest (its share drawn
    first), and the real edit is that selection with noise: close to it, not equal."""
    from trackfusion import selection
    from trackfusion.data.synthetic import highlight_editor as he

    recording, editor, streams = _highlight(seed)
    share = copy.deepcopy(streams.selection).uniform(*he.KEEP_SHARE)  # the editor's first draw
    out = editor.edit(recording, streams)
    expected = selection.decode_to_length(he.interest(recording), FPS, he.EDITOR_DECODING,
                                          int(round(share * recording.n_frames)))
    np.testing.assert_array_equal(out.noiseless_kept, expected)
    at_length = selection.decode_to_length(he.interest(recording), FPS, he.EDITOR_DECODING, int(out.kept.sum()))
    np.testing.assert_array_equal(out.noiseless_kept_at_length, at_length)  # the same, asked for the edit's length
    score = selection.SelectionScore()
    score.add(out.kept, out.noiseless_kept, FPS)
    assert 0.6 < score.kept_f1 < 1.0
    assert not out.timeline[~out.kept].any() and np.array_equal(out.timeline[out.kept] != 0,
                                                               editor.layout.edit(recording, editor.layout.streams(
                                                                   seed, 99, _small_video(seed, 1800)[1].timeline),
                                                               kept=out.kept).timeline[out.kept] != 0)


@pytest.mark.parametrize("seed", range(4))
def test_the_highlight_editor_keeps_what_stands_out_and_drops_menus(seed: int) -> None:
    from trackfusion import selection
    from trackfusion.data.synthetic import highlight_editor as he

    recording, editor, streams = _highlight(seed)
    out = editor.edit(recording, streams)
    runs = selection.segments(out.kept)
    assert (runs[:, 1] - runs[:, 0] >= he.EDITOR_DECODING.min_clip_s * FPS).all()  # minimum clip
    assert (runs[1:, 0] - runs[:-1, 1] >= he.EDITOR_DECODING.min_gap_s * FPS).all()  # minimum gap
    assert 0.15 <= out.kept.mean() <= 0.7
    c = recording.content
    t = recording.time_map.frame_times(recording.n_frames)
    menu = c.scene_kind[np.searchsorted(c.scene_starts, t, side="right") - 1] == he.MENU_KIND
    if menu.sum() > 100:
        assert out.noiseless_kept[menu].mean() < 0.1 < out.noiseless_kept[~menu].mean()
    value = he.interest(recording)
    assert value[out.noiseless_kept].mean() > value[~out.noiseless_kept].mean()


def test_what_stands_out_depends_on_the_whole_recording() -> None:
    """The same stretch is kept in a calm recording and dropped in a loud one: the share is the recording's."""
    from trackfusion import selection

    calm = np.zeros(600)
    calm[200:260] = 1.0  # one stretch that stands out in a quiet recording
    loud = calm.copy()
    loud[400:460] = 5.0  # the same stretch beside a louder one
    d = selection.SelectionDecoding(min_clip_s=2.0, min_gap_s=1.0)
    assert selection.decode_to_length(calm, FPS, d, 60)[200:260].all()
    assert not selection.decode_to_length(loud, FPS, d, 60)[200:260].all()


# --- the layout ceiling (issue 23): the editor's noiseless timeline over the kept frames -----------------
@pytest.mark.parametrize("seed", range(3))
def test_layout_ceiling_is_the_editors_timeline_with_its_noise_switched_off(seed: int) -> None:
    recording, editor, streams = _highlight(seed)
    style = synthetic.sample_style(copy.deepcopy(streams.timeline))  # the layout editor's first draw
    out = editor.edit(recording, streams)
    sure = dataclasses.replace(style, follow_scene=1.0, follow_turn=1.0, follow_text=1.0, follow_motion=1.0,
                               follow_loud=1.0, sticker_rate=1e-9)
    expected = synthetic.edit_timeline(recording, sure, np.random.default_rng(seed + 100), noise=False, kept=out.kept)
    # the layout (each track's active flag and asset) exactly; the zooms are drawn from the twin's own stream
    np.testing.assert_array_equal(cuts.layout(out.noiseless[out.kept]), cuts.layout(expected[out.kept]))
    shown = out.timeline[out.kept]
    agree = (cuts.layout(shown) == cuts.layout(expected[out.kept])).mean(0)  # per track
    assert agree.min() < 1.0 and (agree[[2, 3]] > 0.8).all()  # noise: close


def test_a_speaker_turn_on_a_dropped_frame_toggles_no_face_cam() -> None:
    recording, streams = _small_video(3, 1200)
    style = dataclasses.replace(synthetic.sample_style(copy.deepcopy(streams.timeline)), follow_turn=1.0)
    turns = recording.time_map.first_frames_at(recording.content.speaker_turns) + style.lag
    turns = turns[(turns > 0) & (turns < recording.n_frames)]
    assert len(turns) >= 2
    kept = np.ones(recording.n_frames, bool)
    dropped = int(turns[0])
    kept[max(dropped - style.lag - 5, 0) : dropped - style.lag + 5] = False  # the turn's stretch is cut out
    face = 1 * schema.NUM_TRACK_PARAMS  # track 1, the face cam (its active flag)
    every = synthetic.edit_timeline(recording, style, np.random.default_rng(0), noise=False)[:, face]
    played = synthetic.edit_timeline(recording, style, np.random.default_rng(0), noise=False, kept=kept)[:, face]
    after = dropped + 10
    assert every[after] != played[after]  # one toggle fewer from there on
    np.testing.assert_array_equal(every[: max(dropped - style.lag - 5, 0)], played[: max(dropped - style.lag - 5, 0)])


def test_the_recorded_layout_ceiling_covers_each_edit_and_cuts_where_the_cut_ceiling_does(tmp_path) -> None:
    params = SyntheticParams(seed=4, num_videos=3, min_duration_s=60.0, max_duration_s=90.0)
    out = tmp_path / "c"
    synthetic.generate_corpus(out, params)
    ceiling = json.loads((out / synthetic.CEILING_FILE).read_text(encoding="utf-8"))
    reader = SequenceReader(out / schema.SEQUENCES_FILE)
    with np.load(out / schema.CEILING_LAYOUT_FILE, allow_pickle=False) as layouts:
        assert sorted(layouts.files) == sorted(reader.video_ids)
        for vid in reader.video_ids:
            layout = layouts[vid]
            assert layout.shape == (int(reader.kept(vid).sum()), schema.TRACK_WIDTH) and layout.dtype == np.float32
            assert cuts.video_cut_events(layout).tolist() == ceiling["videos"][vid]
            sticker = layout.reshape(len(layout), schema.NUM_TRACKS, -1)[:, synthetic.TRACK_STICKER]
            assert not sticker.any()
