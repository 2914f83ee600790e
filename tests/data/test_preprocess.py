"""align_corpus / normalize_corpus end to end on small CSVs written here (SPEC sections 4, 5, 8)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trackfusion import schema
from trackfusion.io import features as feature_io
from trackfusion.io import sequences
from trackfusion.data import build as preprocess
from trackfusion.data.alignment import FeatureAligner
from trackfusion.data.corpus import Corpus, assign_splits
from trackfusion.data.normalization import NORMALIZATION_FILE, load_preprocessors
from trackfusion.params import params_from_dict
from trackfusion.data.build import align_corpus, normalize_corpus
from tests.strategies.tracks import random_track

GOOD = "bandicam 2025-03-11 22-57-01-575"
AUDIO_ONLY = "only audio, (take 2)"
BROKEN = "broken track"
CORRUPT = "corrupt visual #3"
NOTHING = "no features"
ASSET = schema.track_columns("asset_id")


def write_audio(path: Path, times: np.ndarray, rng: np.random.Generator) -> None:
    n = len(times)
    speakers = rng.choice(["", "A", "B"], n)
    pd.DataFrame({
        "time": times,
        "audio_energy_rms": rng.random(n),
        "audio_is_speaking": (rng.random(n) < 0.5).astype(int),
        "silence_duration_ms": rng.integers(0, 3000, n),
        "speaker_id": speakers,
        "text_is_active": (rng.random(n) < 0.3).astype(int),
        "text_word": rng.choice(["こんにちは", "a, b", ""], n),
    }).to_csv(path, index=False)


def write_visual(path: Path, times: np.ndarray, rng: np.random.Generator) -> None:
    n = len(times)
    data = {"time": times}
    for c in schema.VISUAL_SCALARS:
        data[c.name] = rng.integers(0, 3, n) if c.name == schema.FACE_COUNT else rng.random(n)
    df = pd.DataFrame(data)
    df.loc[df[schema.FACE_COUNT] == 0, list(schema.FACE_FIELDS)] = np.nan
    clip = pd.DataFrame(rng.normal(size=(n, schema.CLIP_DIM)).round(3), columns=schema.input_names(schema.CLIP_COLUMNS))
    pd.concat([df, clip], axis=1).to_csv(path, index=False)


def make_raw(root: Path, *, features: bool = True, seed: int = 0) -> Path:
    """Five videos: good, audio only, broken track, corrupt visual CSV, no feature files."""
    rng = np.random.default_rng(seed)
    raw = root / "raw"
    (raw / "features").mkdir(parents=True)
    videos = []
    for i, vid in enumerate([GOOD, AUDIO_ONLY, BROKEN, CORRUPT, NOTHING]):
        n = 40 + 10 * i
        frames = random_track(rng, n, loc=50.0, scale=25.0)
        if vid == BROKEN:
            frames[5, 7] = np.nan
        if vid == GOOD:
            frames[3:6, ASSET.start] = 12.0  # asset id out of range: 3 track-frames
        start = 1.0 + i
        videos.append(sequences.TrackData(vid, start, frames))
        if not features or vid == NOTHING:
            continue
        t_a = start - 0.5 + np.arange(0, n / 10 + 1, 0.1)
        t_v = np.sort(start - 0.4 + np.arange(0, n / 10 + 1, 1 / 12) + rng.uniform(-0.01, 0.01, len(np.arange(0, n / 10 + 1, 1 / 12))))
        write_audio(raw / "features" / schema.audio_file_name(vid), t_a, rng)
        if vid in (GOOD, BROKEN, CORRUPT):
            write_visual(raw / "features" / schema.visual_file_name(vid), t_v, rng)
    if features:
        path = raw / "features" / schema.visual_file_name(CORRUPT)
        lines = path.read_text().splitlines()
        path.write_text("\n".join(lines[:3] + [lines[3].replace(",", ",abc,", 1)] + lines[4:]) + "\n")
    sequences.write_sequences(raw / schema.SEQUENCES_FILE, videos)
    return raw


PARAMS = params_from_dict({"data": {"val_fraction": 0.25, "test_fraction": 0.25}})


def test_align_corpus_end_to_end(tmp_path, caplog):
    raw = make_raw(tmp_path)
    with caplog.at_level(logging.INFO):
        summary = align_corpus(raw, tmp_path / "aligned", PARAMS)
    corpus = Corpus(tmp_path / "aligned")
    kept = [GOOD, AUDIO_ONLY, CORRUPT, NOTHING]
    assert [v.video_id for v in corpus.videos] == kept
    assert summary["videos_in"] == 5 and summary["videos_kept"] == 4 and summary["videos_skipped"] == 1
    assert summary["skipped"][0]["video_id"] == BROKEN and "broken track" in summary["skipped"][0]["reason"]
    f = summary["faults"]
    assert f["broken_track_sequence"] == 1
    assert f["missing_visual_file"] == 2 and f["missing_audio_file"] == 1 and f["no_feature_files"] == 1
    assert f["corrupt_visual_file"] == 1 and f["corrupt_audio_file"] == 0
    assert f["asset_id_out_of_range"] == 3
    assert summary["has_features"] and corpus.meta["has_features"]
    splits = assign_splits(kept, 0.25, 0.25, PARAMS.data.split_seed)
    assert {v.video_id: v.split for v in corpus.videos} == splits
    assert summary["frames"] == corpus.total_frames == sum(v.length for v in corpus.videos)

    # the error names the corrupt file; missing modalities are logged with the video id
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(schema.visual_file_name(CORRUPT) in m and repr(CORRUPT) in m for m in errors), errors
    assert any(BROKEN in m for m in errors)
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert AUDIO_ONLY in warned and GOOD in warned  # missing visual file; asset ids remapped

    for v in corpus.videos:
        arr = corpus.video_arrays(v.video_id)
        times = arr["times"][:, 0]
        assert np.all(np.diff(times) > 0)  # property 26 through the driver
        np.testing.assert_allclose(times, v.start_time + np.arange(v.length) / 10)
        assert arr["mask"][:, 2].all()
        assert not np.asarray(arr["audio"])[~arr["mask"][:, 0]].any()
        assert not np.asarray(arr["clip"])[~arr["mask"][:, 1]].any()
    by_id = {v.video_id: corpus.video_arrays(v.video_id) for v in corpus.videos}
    assert by_id[GOOD]["mask"][:, :2].all()
    assert by_id[AUDIO_ONLY]["mask"][:, 0].all() and not by_id[AUDIO_ONLY]["mask"][:, 1].any()
    assert by_id[CORRUPT]["mask"][:, 0].all() and not by_id[CORRUPT]["mask"][:, 1].any()
    assert not by_id[NOTHING]["mask"][:, :2].any()
    assert (by_id[GOOD]["track"][3:6, ASSET.start] == schema.NUM_ASSET_CLASSES - 1).all()

    # the stored values are exactly what the aligner gives on the parsed files
    t = np.asarray(by_id[GOOD]["times"][:, 0])
    want = FeatureAligner().align_features(
        t,
        feature_io.read_audio_csv(raw / "features" / schema.audio_file_name(GOOD)),
        feature_io.read_visual_csv(raw / "features" / schema.visual_file_name(GOOD)),
    )
    np.testing.assert_array_equal(by_id[GOOD]["audio"], want.audio)
    np.testing.assert_array_equal(by_id[GOOD]["visual"], want.visual_scalars)
    np.testing.assert_array_equal(by_id[GOOD]["clip"], want.clip)
    mods = summary["modalities"]
    assert mods["track"]["exact"] == 1.0
    frames = {v.video_id: v.length for v in corpus.videos}
    want_unavail = sum(frames[v] for v in (AUDIO_ONLY, CORRUPT, NOTHING)) / sum(frames.values())
    assert mods["visual"]["unavailable"] == pytest.approx(want_unavail, abs=1e-6)
    json.dumps(summary)  # the summary goes to metrics/alignment.json


def test_no_feature_files_anywhere_is_flagged(tmp_path, caplog):
    raw = make_raw(tmp_path, features=False)
    with caplog.at_level(logging.WARNING):
        summary = align_corpus(raw, tmp_path / "aligned", PARAMS)
    assert not summary["has_features"] and "no video" in summary["message"]
    assert Corpus(tmp_path / "aligned").meta["has_features"] is False
    assert summary["videos_kept"] == 4  # the baseline still has its track data
    assert any("multimodal" in r.getMessage() for r in caplog.records)


def test_failed_align_leaves_previous_corpus_intact(tmp_path, monkeypatch):
    raw = make_raw(tmp_path)
    out = tmp_path / "aligned"
    align_corpus(raw, out, PARAMS)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = {"n": 0}
    real = FeatureAligner.align_features

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # an interruption mid-way
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FeatureAligner, "align_features", failing)
    with pytest.raises(KeyboardInterrupt):
        align_corpus(raw, out, PARAMS)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".aligned")] == []


def test_normalize_corpus_fits_on_train_only(tmp_path):
    raw = make_raw(tmp_path)
    aligned = tmp_path / "aligned"
    align_corpus(raw, aligned, PARAMS)
    summary = normalize_corpus(aligned, tmp_path / "norm")
    norm = Corpus(tmp_path / "norm")
    src = Corpus(aligned)
    assert [(v.video_id, v.split, v.length) for v in norm.videos] == [(v.video_id, v.split, v.length) for v in src.videos]
    assert (tmp_path / "norm" / NORMALIZATION_FILE).is_file()
    assert summary["train_videos"] == len(src.split_videos("train"))
    a, vis, tr = load_preprocessors(tmp_path / "norm" / NORMALIZATION_FILE)
    for v in norm.videos:
        got, raw_arr = norm.video_arrays(v.video_id), src.video_arrays(v.video_id)
        np.testing.assert_array_equal(got["mask"], raw_arr["mask"])
        np.testing.assert_array_equal(got["track"], tr.transform(raw_arr["track"]))
        np.testing.assert_array_equal(got["audio"], a.transform(raw_arr["audio"], raw_arr["mask"][:, 0]))
        np.testing.assert_array_equal(got["track"][:, schema.track_columns("active")], raw_arr["track"][:, schema.track_columns("active")])

    # fitted on train only: rewriting val/test values leaves the statistics unchanged, rewriting train does not
    def stats_after_scaling(split: str) -> dict:
        for name in ("audio", "visual", "track"):
            mm = np.memmap(aligned / f"{name}.bin", dtype=src.array(name).dtype, mode="r+", shape=src.array(name).shape)
            for v in src.videos:
                if v.split == split:
                    mm[v.offset : v.offset + v.length] *= 3
            mm.flush()
            del mm
        normalize_corpus(aligned, tmp_path / "norm2")
        return json.loads((tmp_path / "norm2" / NORMALIZATION_FILE).read_text())

    first = json.loads((tmp_path / "norm" / NORMALIZATION_FILE).read_text())
    assert stats_after_scaling("val") == first
    assert stats_after_scaling("test") == first
    assert stats_after_scaling("train") != first


def test_failed_normalize_leaves_previous_corpus_intact(tmp_path, monkeypatch):
    raw = make_raw(tmp_path)
    aligned, out = tmp_path / "aligned", tmp_path / "norm"
    align_corpus(raw, aligned, PARAMS)
    normalize_corpus(aligned, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(preprocess, "save_preprocessors", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        normalize_corpus(aligned, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_align_peak_memory_does_not_grow_with_videos(tmp_path):
    """Streaming: aligning 8 videos peaks at about the memory of aligning 2 (numpy allocations traced)."""
    import tracemalloc

    def corpus_of(n: int) -> Path:
        rng = np.random.default_rng(7)
        raw = tmp_path / f"raw{n}"
        (raw / "features").mkdir(parents=True)
        videos = []
        for i in range(n):
            vid = f"video {i}"
            frames = random_track(rng, 300, loc=50.0, scale=25.0)
            videos.append(sequences.TrackData(vid, 0.0, frames))
            write_audio(raw / "features" / schema.audio_file_name(vid), np.arange(0, 31, 0.1), rng)
            write_visual(raw / "features" / schema.visual_file_name(vid), np.arange(0, 31, 1 / 12), rng)
        sequences.write_sequences(raw / schema.SEQUENCES_FILE, videos)
        return raw

    peaks = []
    for n in (2, 8):
        raw = corpus_of(n)
        tracemalloc.start()
        align_corpus(raw, tmp_path / f"aligned{n}", PARAMS)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0], peaks


def test_a_video_whose_dropped_frames_hold_track_values_is_skipped_and_align_goes_on(tmp_path):
    """Review of issue 21: the pre-pass read frames only, so a broken kept contract passed it and
    then stopped the whole align stage mid-way instead of skipping the one video."""
    raw = make_raw(tmp_path, features=False)
    path = raw / schema.SEQUENCES_FILE
    with np.load(path) as npz:
        members = {k: npz[k] for k in npz.files}
    kept = np.ones(len(members["frames"]), np.uint8)
    kept[int(members["offsets"][0]) + 2] = 0  # GOOD's frame 2 dropped, but its track values left in
    np.savez(path, **members, kept=kept)
    summary = align_corpus(raw, tmp_path / "aligned", PARAMS)
    assert [s["video_id"] for s in summary["skipped"]] == [GOOD, BROKEN]
    assert "dropped frame" in summary["skipped"][0]["reason"]
    assert GOOD not in [v.video_id for v in Corpus(tmp_path / "aligned").videos]
