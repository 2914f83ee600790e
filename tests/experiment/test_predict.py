"""The roll-out: the model's own previous prediction is the next frame's input.

The decisive property is that no true frame after the first is ever read: corrupting
the truth after frame 0 must leave every roll-out output identical.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies.corpus import write_corpus
from tests.strategies.model import make_batch
from trackfusion import cuts, schema
from trackfusion.learn.checkpoint import save_checkpoint
from trackfusion.data.corpus import Corpus
from trackfusion.learn.dataset import EditWindowDataset, collate_windows, eval_stride
from trackfusion.learn.metrics import VideoLayoutCuts
from trackfusion.learn.model import WHICH_KEY, EditTransformer, ModelConfig, decode_frames
from trackfusion.learn.rollout import hold_parameters, rollout, rollout_cuts, teacher_forced
from trackfusion.experiment.predict import read_example, run_predict
from trackfusion.io.timeline import import_timeline
from trackfusion.results import round_figures
from trackfusion.data.build import normalize_corpus

torch.set_num_threads(1)
TINY = dict(d_model=8, nhead=2, num_encoder_layers=1, dim_feedforward=16, dropout=0.0)
DECODING = cuts.CutDecoding(0.5, 3)


def _model(kind: str, fusion: str = "gated", **config) -> EditTransformer:
    return EditTransformer(ModelConfig(kind=kind, fusion_type=fusion, **{**TINY, **config})).eval()


@settings(max_examples=25)
@given(seed=st.integers(0, 2**16), kind=st.sampled_from(["baseline", "gated", "attention"]),
       T=st.integers(2, 14), context=st.integers(1, 8))
def test_rollout_never_reads_a_true_frame_after_the_first(seed: int, kind: str, T: int, context: int) -> None:
    torch.manual_seed(seed)
    model = _model("baseline" if kind == "baseline" else "multimodal", kind if kind != "baseline" else "gated")
    batch = make_batch(model.config, B=2, T=T, seed=seed, padded=False)
    out, inputs = rollout(model, batch, context, DECODING, progress=False)

    corrupted = {k: v.clone() for k, v in batch.items()}
    gen = torch.Generator().manual_seed(seed + 1)
    corrupted["targets"][:, 1:] = torch.randint(0, 3, corrupted["targets"][:, 1:].shape, generator=gen).float()
    corrupted["prev_track"] = torch.randn(corrupted["prev_track"].shape, generator=gen) * 50  # the teacher-forcing input
    out2, inputs2 = rollout(model, corrupted, context, DECODING, progress=False)
    for k in out:
        torch.testing.assert_close(out[k], out2[k], atol=0, rtol=0)
    torch.testing.assert_close(inputs, inputs2, atol=0, rtol=0)
    assert torch.equal(inputs[:, 0], batch["targets"][:, 0])  # the one true frame it may see: the opening layout


@settings(max_examples=20)
@given(seed=st.integers(0, 2**16), T=st.integers(3, 12))
def test_rollout_feeds_back_its_own_decoded_prediction(seed: int, T: int) -> None:
    torch.manual_seed(seed)
    model = _model("multimodal", toggle_tracks=())  # every track decoded by the cut and which heads
    batch = make_batch(model.config, B=2, T=T, seed=seed, padded=False)
    out, frames = rollout(model, batch, 4, cuts.CutDecoding(0.0, 1), progress=False)  # a cut every frame
    for t in range(1, T):
        step = {k: v[:, t : t + 1] for k, v in out.items()}
        fire = torch.ones(2, 1, dtype=torch.bool)
        torch.testing.assert_close(frames[:, t], decode_frames(step, 0.5, frames[:, t - 1 : t], fire)[:, 0])
        named = (torch.sigmoid(step[WHICH_KEY][:, 0]) > 0.5).any(dim=-1)  # a fired cut changes the tracks the
        assert torch.equal(cuts.cut_flags(frames[:, t], frames[:, t - 1]), named)  # which head names, if any
    baseline = _model("baseline")  # no which head: a fired cut makes at least the single likeliest change
    _, frames = rollout(baseline, batch, 4, cuts.CutDecoding(0.0, 1), progress=False)
    assert all(cuts.cut_flags(frames[:, t], frames[:, t - 1]).all() for t in range(1, T))
    # a threshold nothing reaches never cuts: the opening layout is kept throughout
    _, still = rollout(model, batch, 4, cuts.CutDecoding(1.5, 1), progress=False)
    assert (cuts.layout(still) == cuts.layout(batch["targets"][:, :1])).all()


@pytest.fixture()
def normalized(tmp_path: Path) -> Path:
    aligned = write_corpus(tmp_path / "aligned", lengths=(30, 24, 20, 26, 18), track_std=None)
    normalize_corpus(aligned, tmp_path / "normalized")
    return tmp_path / "normalized"


def test_teacher_forced_scores_the_training_windows(normalized: Path) -> None:
    """predict's teacher-forced figures are the training stage's: evaluation windows, VideoLayoutCuts."""
    model = _model("multimodal").eval()
    corpus = Corpus(normalized)
    dataset = EditWindowDataset(corpus, "train", seq_len=8, stride=eval_stride(8, 3))
    got = teacher_forced(model, dataset, DECODING)
    ref = VideoLayoutCuts()
    with torch.no_grad():
        for i in range(len(dataset)):
            batch = collate_windows([dataset[i]])
            ref.add(model.forward_batch(batch), batch)
    assert got == ref.score(DECODING)
    assert got["true_cuts"] == sum(len(cuts.video_cut_events(np.asarray(corpus.video_arrays(v)["track"])))
                                   for v in dataset.video_ids)


def test_run_predict_writes_readable_otio_and_both_models_figures(tmp_path: Path, normalized: Path) -> None:
    paths = {}
    for kind in ("baseline", "multimodal"):
        paths[kind] = tmp_path / f"{kind}.pt"
        save_checkpoint(paths[kind], _model(kind))
    figures = run_predict(normalized, paths, tmp_path / "pred", tmp_path / "predict.json", context=8)
    saved = json.loads((tmp_path / "predict.json").read_text())
    assert saved == json.loads(json.dumps(round_figures(figures)))  # figures only: no timings
    assert saved.keys() == {"baseline", "multimodal"} and all(saved[k]["videos"] >= 1 for k in saved)
    corpus = Corpus(normalized)
    for kind, folder in (("multimodal", tmp_path / "pred"), ("baseline", tmp_path / "pred" / "baseline")):
        # the roll-out's figures are those of the edits it exported, read back and scored against the truth
        score = cuts.CutScore()
        for path in sorted(folder.glob("*.otio")):
            truth = np.asarray(corpus.video_arrays(path.stem)["track"])
            back = import_timeline(path, main_media=path.stem).frames
            assert len(back) == len(truth)
            score.add(cuts.video_cut_events(back), cuts.video_cut_events(truth), len(truth), path.stem)
        assert score.figures()["cut_f1"] == pytest.approx(saved[kind]["rollout"]["cut_f1"], abs=1e-6), kind
        assert score.figures()["true_cuts"] == saved[kind]["rollout"]["true_cuts"]
    otios = sorted((tmp_path / "pred").glob("*.otio"))
    assert otios and len(otios) == len(sorted((tmp_path / "pred" / "baseline").glob("*.otio")))
    for path in otios:
        timeline = otio.adapters.read_from_file(str(path))
        assert len(timeline.video_tracks()) >= 1
        assert timeline.duration().rate == 30.0  # an editing rate, not data.fps (issue 10)
        sound = timeline.audio_tracks()[0].find_clips()[0]
        assert sound.media_reference.name == path.stem  # the recording, named by its video id
    examples = read_example(tmp_path / "pred" / "example.npz")
    assert 1 <= len(examples) <= 2 and len({vid for *_, vid in examples}) == len(examples)
    for truth, rolled, fps, vid in examples:
        assert truth.shape[1] == schema.TRACK_WIDTH and fps == 10.0
        assert set(rolled) == {"baseline roll-out", "multimodal roll-out"}
        assert rolled["multimodal roll-out"].shape == truth.shape


@pytest.mark.parametrize("hostile", ["/abs/ABS_0", "../../../DOTDOT_1", "a\\b", "..", "line\nbreak"])
def test_a_video_id_that_is_a_path_is_refused_and_nothing_is_written(tmp_path: Path, normalized: Path,
                                                                      hostile: str) -> None:  # fmt: skip
    """Issue 12: predict wrote `<video_id>.otio` with the id as given, outside its folder."""
    import shutil

    corpus = tmp_path / "corpus"
    shutil.copytree(normalized, corpus)
    index = json.loads((corpus / "index.json").read_text())
    index["videos"][0]["video_id"] = hostile
    (corpus / "index.json").write_text(json.dumps(index))
    paths = {}
    for kind in ("baseline", "multimodal"):
        paths[kind] = tmp_path / f"{kind}.pt"
        save_checkpoint(paths[kind], _model(kind))
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(ValueError, match="is not a plain file name"):
        run_predict(corpus, paths, tmp_path / "out" / "pred", tmp_path / "predict.json", context=8)
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written, nowhere
    assert not Path("/abs").exists()
    with pytest.raises(ValueError, match="is not a plain file name"):
        schema.audio_file_name(hostile)


def test_rollout_layout_accuracy_leaves_out_the_given_first_frame_as_teacher_forced_does() -> None:
    """Both modes count the same frames: a video's first frame is given, not predicted."""
    truth = np.zeros((4, schema.TRACK_WIDTH), np.float32)
    truth[:, 0] = 1.0  # track 0 active, asset 0, on every frame
    rolled = truth.copy()
    rolled[0, 1] = 4.0  # only the given first frame differs
    score, same, total = rollout_cuts({"v": {"truth": truth, "rollout": rolled}})
    assert (same, total) == (3, 3)
    assert cuts.layout_agreement(cuts.layout(rolled), cuts.layout(truth), np.ones(4, bool)) == (3, 4)


@settings(max_examples=50)
@given(seed=st.integers(0, 10_000), tolerance=st.floats(0.05, 2.0))
def test_held_parameters_move_only_beyond_the_tolerance_of_a_track_that_keeps_its_layout(seed: int,
                                                                                        tolerance: float) -> None:
    """Issue 10: fed their own output, the heads' parameters drifted every step, which cut a
    predicted edit into 150 one-frame-ish clips on a track whose truth has 19."""
    g = torch.Generator().manual_seed(seed)
    N, P = schema.NUM_TRACKS, schema.NUM_TRACK_PARAMS
    prev = torch.zeros(3, N, P)
    prev[..., 0] = (torch.rand(3, N, generator=g) < 0.6).float()
    prev[..., 1] = torch.randint(0, 3, (3, N), generator=g).float() * prev[..., 0]
    prev[..., 2:] = torch.randn(3, N, P - 2, generator=g) * prev[..., :1]
    now = prev.clone()
    now[..., 0] = torch.where(torch.rand(3, N, generator=g) < 0.2, 1 - prev[..., 0], prev[..., 0])
    now[..., 1] = torch.where(torch.rand(3, N, generator=g) < 0.2, prev[..., 1] + 1, prev[..., 1])
    now[..., 2:] = prev[..., 2:] + torch.randn(3, N, P - 2, generator=g) * tolerance
    out = hold_parameters(now.reshape(3, -1), prev.reshape(3, -1), tolerance).reshape(3, N, P)
    same = (now[..., 0] > 0.5) & (prev[..., 0] > 0.5) & (now[..., 1] == prev[..., 1])
    small = (now[..., 2:] - prev[..., 2:]).abs() <= tolerance
    torch.testing.assert_close(out[..., :2], now[..., :2], rtol=0, atol=0)  # the layout is the model's
    expected = torch.where(same[..., None] & small, prev[..., 2:], now[..., 2:])
    torch.testing.assert_close(out[..., 2:], expected, rtol=0, atol=0)
    assert torch.equal(hold_parameters(now.reshape(3, -1), prev.reshape(3, -1), 0.0), now.reshape(3, -1))
