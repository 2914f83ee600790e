"""EditWindowDataset windows, the shifted track input, collation, the shuffle control."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trackfusion import schema
from trackfusion.data.corpus import Corpus
from trackfusion.learn.dataset import (
    EditWindowDataset,
    collate_windows,
    create_dataloaders,
    derangement,
    eval_stride,
    first_scored,
    window_starts,
)
from trackfusion.data.normalization import read_track_normalization, read_track_std
from trackfusion.params import params_from_dict
from tests.strategies.corpus import video_lengths, write_corpus


def _windows_of(ds: EditWindowDataset) -> list[tuple[int, int, int]]:
    return list(zip(ds.window_video.tolist(), ds.window_start.tolist(), ds.window_length.tolist()))


@given(length=st.integers(1, 300), seq_len=st.integers(1, 64), stride=st.integers(1, 64))
@settings(max_examples=200)
def test_window_starts_cover_the_video_and_end_at_its_last_frame(length: int, seq_len: int, stride: int) -> None:
    starts = window_starts(length, seq_len, stride)
    ends = np.minimum(starts + seq_len, length)
    assert starts[0] == 0 and ends[-1] == length  # first frame and last frame are in a window
    assert (starts >= 0).all() and (ends <= length).all()  # never beyond the video
    assert (np.diff(starts) > 0).all()
    assert (np.diff(starts) <= stride).all()  # the strides, plus one final window moved back
    if length <= seq_len:
        assert starts.tolist() == [0]
    else:
        assert (ends[:-1] - starts[:-1] == seq_len).all()  # full windows, but for the last one
        if stride < seq_len:
            assert ends[-1] - starts[-1] == seq_len  # overlapping: the last one moved back, full
    if stride == seq_len:
        assert (starts[1:] == ends[:-1]).all()  # tiling (evaluation): each frame in one window
    covered = np.zeros(length, dtype=bool)
    for s, e in zip(starts, ends):
        covered[s:e] = True
    assert covered.all() or stride > seq_len  # stride > seq_len deliberately skips frames


@given(length=st.integers(1, 400), seq_len=st.integers(1, 64), context=st.integers(0, 80))
@settings(max_examples=200)
def test_eval_windows_score_every_frame_once_with_its_history(length: int, seq_len: int, context: int) -> None:
    """Each frame is scored in exactly one window, and beyond a video's first window with
    at least min(context, seq_len // 2) frames of history in it, as the roll-out sees it."""
    starts = window_starts(length, seq_len, eval_stride(seq_len, context))
    scored_from = first_scored(starts, seq_len)
    times = np.zeros(length, dtype=int)
    for s, f in zip(starts.tolist(), scored_from.tolist()):
        times[s + f : min(s + seq_len, length)] += 1
        if s > 0:
            assert f >= min(context, seq_len // 2)
    assert (times == 1).all()
    assert eval_stride(seq_len, 0) == seq_len  # no context asked: the windows tile


@given(lengths=video_lengths(min_videos=1, max_videos=4, max_length=30), seq_len=st.integers(1, 12),
       stride=st.integers(1, 12))  # fmt: skip
@settings(max_examples=40)
def test_property_windows_stay_in_one_video_and_track_is_the_shifted_targets(
    lengths: list[int], seq_len: int, stride: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_corpus(Path(tmp) / "c", lengths, ["train"] * len(lengths), seed=len(lengths) + seq_len)
        corpus = Corpus(path)
        ds = EditWindowDataset(corpus, "train", seq_len, stride)
        assert ds.frames == sum(int(n) for _, _, n in _windows_of(ds))
        full_track = np.asarray(corpus.array("track"))
        for i, (v, s, n) in enumerate(_windows_of(ds)):
            video = ds.videos[v]
            assert 0 <= s and s + n <= video.length  # inside one video
            item = ds[i]
            T = len(item["targets"])
            assert T == n <= seq_len
            if s + seq_len <= video.length:
                assert n == seq_len  # only a window reaching the video's end may be short
            else:
                assert s + n == video.length
            rows = full_track[video.offset : video.offset + video.length]  # the video's own frames
            np.testing.assert_array_equal(item["targets"].numpy(), rows[s : s + n])
            expected_prev = np.concatenate([np.zeros((1, schema.TRACK_WIDTH), np.float32), rows[:-1]])[s : s + n]
            np.testing.assert_array_equal(item["prev_track"].numpy(), expected_prev)  # frame t holds t-1
            assert item["has_prev"][0].item() == (s > 0)
            assert item["has_prev"][1:].all()
            for key in ("audio", "visual", "prev_track", "targets", "padding_mask", "modality_mask", "has_prev"):
                assert item[key].shape[0] == T  # SPEC property 16
        # every frame of every video is a target of at least one window (stride <= seq_len)
        if stride <= seq_len:
            seen = [np.zeros(v.length, bool) for v in ds.videos]
            for v, s, n in _windows_of(ds):
                seen[v][s : s + n] = True
            assert all(x.all() for x in seen)


def test_item_content_matches_corpus_and_clip_is_widened(tmp_path: Path) -> None:
    path = write_corpus(tmp_path / "c", [30, 12], ["train", "train"], seed=3)
    corpus = Corpus(path)
    ds = EditWindowDataset(corpus, "train", seq_len=8, stride=5)
    i = 2  # third window of the first video: frames 10..17
    v, s, n = _windows_of(ds)[i]
    item = ds[i]
    lo = corpus.videos[v].offset + s
    mask = np.asarray(corpus.array("mask")[lo : lo + n])
    np.testing.assert_array_equal(item["modality_mask"].numpy(), mask)
    np.testing.assert_array_equal(item["audio"].numpy(), np.asarray(corpus.array("audio")[lo : lo + n]))
    visual = item["visual"].numpy()
    assert item["visual"].dtype == torch.float32 and visual.shape == (n, schema.VISUAL_WIDTH)
    expected_scalars = np.where(mask[:, 1:2], corpus.array("visual")[lo : lo + n], 0)
    expected_clip = np.where(mask[:, 1:2], corpus.array("clip")[lo : lo + n].astype(np.float32), 0)
    np.testing.assert_array_equal(visual[:, :10], expected_scalars)
    np.testing.assert_array_equal(visual[:, 10:], expected_clip)


def test_collate_pads_with_zeros_and_false() -> None:
    def item(n: int, fill: float) -> dict[str, torch.Tensor]:
        return {
            "audio": torch.full((n, 5), fill),
            "visual": torch.full((n, 522), fill),
            "prev_track": torch.full((n, 180), fill),
            "targets": torch.full((n, 180), fill),
            "padding_mask": torch.ones(n, dtype=torch.bool),
            "modality_mask": torch.ones(n, 3, dtype=torch.bool),
            "has_prev": torch.ones(n, dtype=torch.bool),
            "video_index": torch.tensor(n),
            "start": torch.tensor(0),
        }

    batch = collate_windows([item(3, 1.0), item(7, 2.0), item(1, 3.0)])
    assert batch["audio"].shape == (3, 7, 5) and batch["visual"].shape == (3, 7, 522)
    assert batch["padding_mask"].sum(1).tolist() == [3, 7, 1]
    assert batch["padding_mask"].dtype == torch.bool
    for key in ("audio", "visual", "prev_track", "targets"):
        assert (batch[key][0, 3:] == 0).all() and (batch[key][0, :3] == 1).all()
        assert (batch[key][2, 1:] == 0).all() and (batch[key][2, 0] == 3).all()
    assert not batch["modality_mask"][0, 3:].any() and not batch["has_prev"][2, 1:].any()
    assert batch["video_index"].tolist() == [3, 7, 1]
    same = collate_windows([item(4, 1.0), item(4, 2.0)])  # nothing to pad
    assert same["targets"].shape == (2, 4, 180) and same["padding_mask"].all()
    assert (same["audio"][1] == 2).all()


@given(n=st.integers(2, 60), seed=st.integers(0, 10_000))
@settings(max_examples=200)
def test_derangement_has_no_fixed_point_and_is_deterministic(n: int, seed: int) -> None:
    d = derangement(n, seed)
    assert sorted(d.tolist()) == list(range(n))
    assert (d != np.arange(n)).all()
    np.testing.assert_array_equal(d, derangement(n, seed))


def test_shuffle_control_pairs_track_with_another_videos_content(tmp_path: Path) -> None:
    lengths = [20, 9, 15, 30]
    path = write_corpus(tmp_path / "c", lengths, ["train"] * 4, seed=5)
    corpus = Corpus(path)
    plain = EditWindowDataset(corpus, "train", seq_len=10, stride=10)
    shuffled = EditWindowDataset(corpus, "train", seq_len=10, stride=10, content_control="shuffle", seed=7)
    again = EditWindowDataset(corpus, "train", seq_len=10, stride=10, content_control="shuffle", seed=7)
    np.testing.assert_array_equal(shuffled.donor, again.donor)
    assert (shuffled.donor != np.arange(4)).all()  # a derangement: nobody keeps its own content
    assert _windows_of(plain) == _windows_of(shuffled)  # windows follow the track's own video
    audio = np.asarray(corpus.array("audio"))
    mask = np.asarray(corpus.array("mask"))
    for i, (v, s, n) in enumerate(_windows_of(shuffled)):
        a, b = plain[i], shuffled[i]
        np.testing.assert_array_equal(a["prev_track"], b["prev_track"])  # the track and targets are the video's own
        np.testing.assert_array_equal(a["targets"], b["targets"])
        donor = corpus.videos[int(shuffled.donor[v])]
        m = max(0, min(n, donor.length - s))  # the donor's frames in this window
        rows = slice(donor.offset + s, donor.offset + s + m)
        np.testing.assert_array_equal(b["audio"][:m].numpy(), np.where(mask[rows, :1], audio[rows], 0))
        np.testing.assert_array_equal(b["modality_mask"][:m, :2].numpy(), mask[rows, :2])
        assert not b["modality_mask"][m:, :2].any()  # beyond the donor's end: unavailable
        assert (b["audio"][m:] == 0).all() and (b["visual"][m:] == 0).all()
        assert b["modality_mask"][:, 2].all()


def test_shuffle_with_one_video_gives_no_content(tmp_path: Path) -> None:
    path = write_corpus(tmp_path / "c", [12], ["val"])
    ds = EditWindowDataset(path, "val", seq_len=8, stride=8, content_control="shuffle")
    item = ds[0]
    assert not item["modality_mask"][:, :2].any() and (item["audio"] == 0).all()


def test_unknown_content_control_is_an_error(tmp_path: Path) -> None:
    path = write_corpus(tmp_path / "c", [12], ["train"])
    with pytest.raises(ValueError, match="content_control"):
        EditWindowDataset(path, "train", 8, 8, content_control="swap")


def _params(**train: object) -> object:
    return params_from_dict({"model": {"seq_len": 8, "d_model": 16, "nhead": 2}, "train": {"batch_size": 4, "stride": 3, **train}})


def test_dataloaders_eval_sees_each_frame_once_and_train_is_seeded(tmp_path: Path) -> None:
    lengths = [40, 25, 30, 18, 22, 35]
    path = write_corpus(tmp_path / "c", lengths, ["train", "train", "train", "val", "test", "test"])
    loaders = create_dataloaders(path, _params())
    assert set(loaders) == {"train", "val", "test"}
    test_frames = sum(int((b["padding_mask"] & b["scored"]).sum()) for b in loaders["test"])
    assert test_frames == 22 + 35  # every frame scored once
    # eval windows overlap by predict.context (at most half a window) to give each scored frame its history
    assert loaders["val"].dataset.stride == 8 - min(_params().predict.context, 4) and loaders["train"].dataset.stride == 3
    order_a = [b["start"].tolist() + b["video_index"].tolist() for b in create_dataloaders(path, _params())["train"]]
    order_b = [b["start"].tolist() + b["video_index"].tolist() for b in loaders["train"]]
    assert order_a == order_b  # the same seed gives the same shuffled order
    shuffled = create_dataloaders(path, params_from_dict({"content_control": "shuffle"}), splits=("train",), multimodal=True)
    assert shuffled["train"].dataset.content_control == "shuffle"
    assert create_dataloaders(path, params_from_dict({"content_control": "shuffle"}))["train"].dataset.content_control == "none"


def test_track_std_read_from_normalization_json(tmp_path: Path) -> None:
    path = write_corpus(tmp_path / "c", [10], ["train"], track_std=3.5)
    mean, std = read_track_normalization(path)
    assert std.shape == mean.shape == (180,)
    assert (std[schema.track_columns("scale")] == 3.5).all() and (std[schema.track_columns("crop_b")] == 3.5).all()
    assert (mean[schema.track_columns("x")] == 100).all()
    assert (std[schema.track_columns("active")] == 1).all() and (std[schema.track_columns("asset_id")] == 1).all()
    assert (mean[schema.track_columns("asset_id")] == 0).all()
    # an aligned corpus (no normalization.json) reports normalised == original units
    assert (read_track_std(write_corpus(tmp_path / "d", [10], ["train"], track_std=None)) == 1).all()


def test_track_normalization_matches_the_normalization_module(tmp_path: Path) -> None:
    """The reader agrees with what trackfusion.data.normalization writes (a slow reference)."""
    from trackfusion.data.normalization import (
    AudioFeaturePreprocessor,
    TrackPreprocessor,
    VisualFeaturePreprocessor,
)
    from trackfusion.data.normalization import save_preprocessors

    rng = np.random.default_rng(0)
    track = write_corpus(tmp_path / "c", [200], ["train"])
    frames = np.asarray(Corpus(track).array("track")) * 7 + 50
    frames[:, schema.track_columns("active")] = (rng.random((200, 20)) < 0.5).astype(np.float32)
    tp = TrackPreprocessor().partial_fit(frames).finalize()
    ap = AudioFeaturePreprocessor().partial_fit(rng.normal(size=(50, 5)).astype(np.float32)).finalize()
    vp = VisualFeaturePreprocessor().partial_fit(rng.normal(size=(50, 522)).astype(np.float32)).finalize()
    save_preprocessors(tmp_path / "c" / "normalization.json", ap, vp, tp)
    mean, std = read_track_normalization(tmp_path / "c")
    z = tp.transform(frames)
    active = frames[:, schema.track_columns("active")] > 0.5  # (T, 20)
    for name in schema.TRACK_CONTINUOUS:
        cols = schema.track_columns(name)
        back = z[:, cols] * std[cols] + mean[cols]
        np.testing.assert_allclose(back[active], frames[:, cols][active], rtol=1e-4, atol=1e-3)


@given(lengths=video_lengths(min_videos=1, max_videos=6, max_length=25), features=st.booleans())
@settings(max_examples=20)
def test_strategy_write_corpus_writes_what_it_says(lengths: list[int], features: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Corpus(write_corpus(Path(tmp) / "c", lengths, features=features))
        assert [v.length for v in corpus.videos] == lengths
        assert corpus.total_frames == sum(lengths)
        if len(lengths) >= 3:
            assert {v.split for v in corpus.videos} == {"train", "val", "test"}
        mask = np.asarray(corpus.array("mask"))
        assert mask[:, 2].all() and (mask[:, :2].any() == features)
        assert (np.asarray(corpus.array("visual"))[~mask[:, 1]] == 0).all()  # unavailable content is zero
        active = np.asarray(corpus.array("track"))[:, schema.track_columns("active")]
        assert set(np.unique(active)) <= {0.0, 1.0}
