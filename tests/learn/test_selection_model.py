"""The selection model (issue 22): it may look ahead, it never reads what it predicts, and it learns."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.strategies.corpus import write_corpus
from trackfusion import schema, selection
from trackfusion.data.corpus import Corpus
from trackfusion.learn.dataset import EditWindowDataset
from trackfusion.learn.selection_model import (
    SELECTION_VERSION,
    Recording,
    SelectionConfig,
    SelectionEnsemble,
    SelectionError,
    SelectionModel,
    keep_scores,
    load_selection,
    member_seed,
    read_recordings,
    save_selection,
    train_selection,
    val_kept_f1,
)
from trackfusion.params import ParamsError, params_from_dict

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _recording(n: int = 400, seed: int = 0) -> Recording:
    rng = np.random.default_rng(seed)
    visual = rng.normal(size=(n, schema.VISUAL_WIDTH)).astype(np.float32)
    return Recording("v", "test", rng.normal(size=(n, schema.AUDIO_WIDTH)).astype(np.float32), visual,
                     np.ones((n, 2), bool), rng.random(n) < 0.4)


def _model(**config) -> SelectionModel:
    torch.manual_seed(0)
    return SelectionModel(SelectionConfig(hidden=8, **config)).eval()


def test_the_kept_flags_never_reach_its_input() -> None:
    """Changing the kept flags (its target) leaves every score unchanged."""
    model, r = _model(), _recording()
    flipped = dataclasses.replace(r, kept=~r.kept)
    np.testing.assert_array_equal(keep_scores(model, r), keep_scores(model, flipped))


def test_the_kept_flags_in_the_corpus_never_reach_its_input(tmp_path: Path) -> None:
    """The same through the corpus: two corpora that differ only in kept give the same inputs, and
    the layout's windows of a video hold exactly its kept frames, in order."""
    n = 60
    kept = np.zeros(n, bool)
    kept[10:30] = kept[40:55] = True
    a = write_corpus(tmp_path / "a", [n, n, n], ["train", "val", "test"], kept=[kept, kept, kept])
    b = write_corpus(tmp_path / "b", [n, n, n], ["train", "val", "test"], kept=[~kept, kept, ~kept])
    for ra, rb in zip(read_recordings(a), read_recordings(b)):
        np.testing.assert_array_equal(ra.audio, rb.audio)
        np.testing.assert_array_equal(ra.visual, rb.visual)
        np.testing.assert_array_equal(ra.mask, rb.mask)
    corpus = Corpus(a)
    ds = EditWindowDataset(corpus, "train", seq_len=64, stride=64)
    item = ds[0]
    rows = corpus.edit_rows(corpus.split_videos("train")[0].video_id)
    assert len(item["targets"]) == kept.sum() == len(rows)
    np.testing.assert_array_equal(item["targets"].numpy(), corpus.array("track")[rows])
    # the previous frame of the first frame after a jump cut is the last kept frame before it
    np.testing.assert_array_equal(item["prev_track"][20].numpy(), corpus.array("track")[rows[19]])


def test_it_looks_ahead() -> None:
    """A frame's score reads what comes after it (an editor knows the whole recording)."""
    model, r = _model(), _recording()
    later = dataclasses.replace(r, audio=r.audio.copy())
    later.audio[300:] += 3.0
    before, after = keep_scores(model, r), keep_scores(model, later)
    assert not np.allclose(before[250:300], after[250:300])


@pytest.mark.parametrize("flag, part", [("use_audio", "audio"), ("use_visual", "visual")])
def test_a_modality_switched_off_is_not_read(flag: str, part: str) -> None:
    model, r = _model(**{flag: False}), _recording()
    changed = dataclasses.replace(r, **{part: getattr(r, part) + 5.0})
    np.testing.assert_array_equal(keep_scores(model, r), keep_scores(model, changed))


def test_a_file_round_trips_and_a_file_that_is_not_one_says_so(tmp_path: Path) -> None:
    model = _model()
    path = save_selection(tmp_path / "s.pt", model, extra={"decoding": selection.SelectionDecoding().to_dict()})
    back, payload = load_selection(path)
    r = _recording()
    np.testing.assert_array_equal(keep_scores(model, r), keep_scores(back, r))
    assert payload["members"] == 1 and payload["extra"]["decoding"]["min_clip_s"] == 3.0
    torch.manual_seed(1)
    ensemble = SelectionEnsemble(SelectionConfig(hidden=8), 3).eval()
    back, payload = load_selection(save_selection(tmp_path / "e.pt", ensemble))
    assert payload["members"] == 3 and len(back.members) == 3
    np.testing.assert_array_equal(keep_scores(ensemble, r), keep_scores(back, r))
    older = tmp_path / "older.pt"  # a file of the single-model version
    torch.save({**payload, "selection_version": SELECTION_VERSION - 1}, older)
    with pytest.raises(SelectionError, match="older.pt: not a trackfusion selection model of version"):
        load_selection(older)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(SelectionError, match="junk.pt: not a trackfusion selection model"):
        load_selection(junk)
    with pytest.raises(FileNotFoundError, match="dvc repro select"):
        load_selection(tmp_path / "missing.pt")


def _loud_recordings(tmp_path: Path) -> list[Recording]:
    """Eight recordings whose editor keeps three loud stretches each (the energy shows them): 5 train, 1 val, 2 test."""
    rng = np.random.default_rng(1)
    lengths, kept = [300] * 8, []
    for n in lengths:
        loud = np.zeros(n, bool)
        for a in rng.integers(0, n - 40, 3):
            loud[a : a + 30] = True
        kept.append(loud)
    corpus = write_corpus(tmp_path / "c", lengths, ["train"] * 5 + ["val", "test", "test"], kept=kept)
    recordings = read_recordings(corpus)
    for r in recordings:
        r.audio[:, 0] = np.where(r.kept, 2.0, -0.5) + 0.3 * rng.standard_normal(len(r))  # energy shows it
    return recordings


def test_it_learns_to_keep_what_is_loud(tmp_path: Path) -> None:
    """On recordings whose editor keeps the loud stretches, the trained model's selection at the true length
    beats chance by far on videos it never saw."""
    recordings = _loud_recordings(tmp_path)
    params = params_from_dict({"select": {"hidden": 8, "epochs": 25, "lr": 0.01, "ensemble": 2}})
    decoding = selection.SelectionDecoding(min_clip_s=1.0, min_gap_s=0.5)
    model, info = train_selection(recordings, params, 10.0, decoding, progress=False)
    score = selection.SelectionScore()
    for r in recordings:
        if r.split == "test":
            score.add(selection.decode_to_length(keep_scores(model, r), 10.0, decoding, int(r.kept.sum())), r.kept, 10)
    assert score.kept_f1 > 0.8 and info["best_val_kept_f1"] > 0.8
    # two members from their own seeds, the first the one model a run of one member trains
    assert len(model.members) == 2 and len(info["members"]) == 2 and len(info["best_epochs"]) == 2
    one, _ = train_selection(recordings, params_from_dict({"select": {"hidden": 8, "epochs": 25, "lr": 0.01,
                                                                      "ensemble": 1}}), 10.0, decoding, progress=False)
    r = recordings[0]
    first, second = (keep_scores(m, r) for m in model.members)
    np.testing.assert_array_equal(keep_scores(one, r), first)
    assert not np.allclose(first, second)


def test_its_checkpoint_is_the_moving_average_of_its_weights(tmp_path: Path) -> None:
    """``select.ema``: what is scored on val and kept is the weights' average over the steps. A decay near 0 is
    the last step's weights (the model of ``ema: 0``), 0.9 is not; either way the kept checkpoint is the one
    whose val kept F1 was recorded."""
    recordings = _loud_recordings(tmp_path)
    decoding = selection.SelectionDecoding(min_clip_s=1.0, min_gap_s=0.5)
    val = [r for r in recordings if r.split == "val"]

    def trained(ema: float):
        params = params_from_dict({"select": {"hidden": 8, "epochs": 3, "lr": 0.01, "ensemble": 1, "ema": ema}})
        model, info = train_selection(recordings, params, 10.0, decoding, progress=False)
        assert val_kept_f1(model, val, 10.0, decoding) == pytest.approx(info["members"][0]["best_val_kept_f1"])
        return [keep_scores(model, r) for r in recordings]

    plain, nearly_last, averaged = trained(0.0), trained(1e-9), trained(0.9)
    np.testing.assert_allclose(np.concatenate(nearly_last), np.concatenate(plain), rtol=1e-4, atol=1e-6)
    assert not np.allclose(np.concatenate(averaged), np.concatenate(plain), rtol=1e-3, atol=1e-4)
    for bad in (-0.1, 1.0):
        with pytest.raises(ParamsError, match="select.ema"):
            params_from_dict({"select": {"ema": bad}})


def test_an_ensemble_reads_the_mean_of_its_members_logits() -> None:
    torch.manual_seed(0)
    ensemble = SelectionEnsemble(SelectionConfig(hidden=8), 3).eval()
    r = _recording()
    logits = [np.log(keep_scores(m, r)) - np.log1p(-keep_scores(m, r)) for m in ensemble.members]
    expected = 1 / (1 + np.exp(-np.mean(logits, axis=0)))
    np.testing.assert_allclose(keep_scores(ensemble, r), expected, rtol=1e-4, atol=1e-6)
    flipped = dataclasses.replace(r, kept=~r.kept)  # its target is no input of any member
    np.testing.assert_array_equal(keep_scores(ensemble, r), keep_scores(ensemble, flipped))
    with pytest.raises(ValueError, match="at least one member"):
        SelectionEnsemble(SelectionConfig(hidden=8), 0)


def test_member_seeds_are_the_run_seed_then_distinct_draws() -> None:
    seeds = [member_seed(s, k) for s in range(3) for k in range(5)]
    assert [member_seed(s, 0) for s in range(3)] == [0, 1, 2] and len(set(seeds)) == len(seeds)


def test_a_scalar_it_is_not_given_is_not_read() -> None:
    """Only the scalars named in audio_inputs / visual_inputs reach it (saliency and face geometry, constant
    within a scene, are left out by default: they let it memorise the train videos scene by scene)."""
    model, r = _model(audio_inputs=("audio_energy_rms",), visual_inputs=("visual_motion",)), _recording()
    changed = dataclasses.replace(r, audio=r.audio.copy(), visual=r.visual.copy())
    changed.audio[:, 1:] += 5.0
    changed.visual[:, 2:schema.VISUAL_SCALAR_WIDTH] += 5.0
    np.testing.assert_array_equal(keep_scores(model, r), keep_scores(model, changed))
    changed.visual[:, 1] += 5.0
    assert not np.allclose(keep_scores(model, r), keep_scores(model, changed))
    with pytest.raises(ValueError, match="unknown column"):
        SelectionConfig(visual_inputs=("visual_motoin",))


def test_the_params_name_the_scalars_it_reads() -> None:
    config = SelectionConfig.from_params(params_from_dict({}))
    assert config.visual_inputs == ("scene_change", "visual_motion")
    assert "saliency_x" not in config.visual_inputs
    with pytest.raises(ParamsError, match="select.visual_inputs"):
        params_from_dict({"select": {"visual_inputs": ["visual_motoin"]}})
