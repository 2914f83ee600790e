"""The toggle head (learn/toggle.py): what it reads, that it is causal, that it takes no part in
training, that fitted it learns a track the audio toggles, and that the roll-out obeys it alone."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.experiment.test_layout_references import AUDIO, write_corpus
from trackfusion import schema
from trackfusion.data.corpus import Corpus
from trackfusion.learn.loss import MultiTrackLoss
from trackfusion.learn.model import ModelConfig, build_model
from trackfusion.learn.toggle import (
    TOGGLE_CONTEXT,
    TOGGLE_KEY,
    ToggleHead,
    apply_toggles,
    fit_toggle_head,
    since_change,
    toggle_ready,
    toggle_targets,
)

torch.set_num_threads(1)
P = schema.NUM_TRACK_PARAMS
N = 3


def frames_of(on: np.ndarray, track: int = 1, asset: int = 1) -> torch.Tensor:
    """(1, T, N*9) frames with `track` on where `on`, everything else off."""
    x = torch.zeros(1, len(on), N, P)
    x[0, :, track, 0] = torch.from_numpy(on.astype(np.float32))
    x[0, :, track, 1] = float(asset) * x[0, :, track, 0]
    return x.reshape(1, len(on), N * P)


@settings(max_examples=60, deadline=None)
@given(on=st.lists(st.booleans(), min_size=1, max_size=40))
def test_since_change_counts_the_frames_since_the_track_last_changed(on):
    on = np.array(on)
    truth = frames_of(on)
    prev = torch.cat([truth[:, :1], truth[:, :-1]], dim=1)  # row t holds frame t - 1, as the model is given it
    bins = since_change(prev, (1,))[0, :, 0].numpy()
    for t in range(len(on)):
        changes = [s for s in range(1, t) if on[s] != on[s - 1]]  # frames < t where the track changed
        expected = t - 1 - changes[-1] if changes and t - 1 - changes[-1] < TOGGLE_CONTEXT else TOGGLE_CONTEXT
        assert bins[t] == expected, (t, on.tolist())


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), T=st.integers(2, 30), data=st.data())
def test_the_toggle_head_reads_no_later_frame(seed, T, data):
    t = data.draw(st.integers(0, T - 1))
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = ToggleHead(schema.AUDIO_WIDTH, (0, 2)).eval()
    audio = torch.randn(2, T, schema.AUDIO_WIDTH, generator=gen)
    prev = (torch.rand(2, T, N * P, generator=gen) > 0.5).float()
    available = torch.rand(2, T, generator=gen) > 0.2
    out = head(audio, available, prev)
    later = audio.clone(), available.clone(), prev.clone()
    later[0][:, t + 1 :] = torch.randn(2, T - t - 1, schema.AUDIO_WIDTH, generator=gen)
    later[1][:, t + 1 :] = ~later[1][:, t + 1 :]
    later[2][:, t + 1 :] = 1 - later[2][:, t + 1 :]
    torch.testing.assert_close(head(*later)[:, : t + 1], out[:, : t + 1], rtol=0, atol=0)


def test_the_toggle_head_takes_no_part_in_training():
    """Built with or without it from the same seed, and after a training step, the rest of the model is
    the same: its start draws nothing from the run's RNG, and the optimiser never moves it."""
    config = ModelConfig(d_model=16, nhead=2, num_encoder_layers=1, dim_feedforward=16, num_tracks=N,
                         audio_features=schema.AUDIO_WIDTH, visual_features=4, toggle_tracks=(1,))  # fmt: skip
    models = []
    for toggles in ((1,), ()):
        torch.manual_seed(0)
        model = build_model(ModelConfig(**{**config.to_dict(), "toggle_tracks": toggles})).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        torch.manual_seed(1)
        B, T = 2, 9
        targets = (torch.rand(B, T, N * P) > 0.5).float()
        prev = torch.cat([targets[:, :1], targets[:, :-1]], dim=1)
        out = model(torch.randn(B, T, schema.AUDIO_WIDTH), torch.randn(B, T, 4), prev)
        MultiTrackLoss()(out, targets, prev_track=prev)["total"].backward()
        opt.step()
        models.append(model)
    with_head, without = (m.state_dict() for m in models)
    assert set(with_head) - set(without) == {k for k in with_head if k.startswith("toggle.")} != set()
    for k, v in without.items():
        torch.testing.assert_close(with_head[k], v, rtol=0, atol=0, msg=k)
    assert all(not p.requires_grad and p.grad is None for p in models[0].toggle.parameters())


@pytest.mark.parametrize("lag", [0, 1, 2])
def test_a_fitted_toggle_head_switches_a_track_on_the_audio_event_that_toggles_it(tmp_path, lag):
    """The known editor toggles the face cam `lag` frames after each speaker turn: fitted on the train
    videos and rolled out on its own switches, the head makes every switch the editor makes and no
    other, each as soon as the turn is heard and never after the editor's."""
    corpus = Corpus(write_corpus(tmp_path / "c", lag, splits=("train",) * 8 + ("test",) * 2))
    head = ToggleHead(schema.AUDIO_WIDTH, (1,))
    facts = fit_toggle_head(head, corpus, "train", seed=0, steps=1500)
    assert facts["videos"] == 8 and facts["switches"] > 10
    switches = 0
    for v in corpus.split_videos("test"):
        arrays = corpus.edit_arrays(v.video_id)
        audio = torch.tensor(np.asarray(arrays["audio"], np.float32))[None]
        truth = torch.tensor(np.asarray(arrays["track"], np.float32))[None]
        frames = truth[:, :1].clone()  # the opening layout is given
        for t in range(1, truth.shape[1]):  # rolled out: the head reads its own switches, never the truth's
            prev = torch.cat([frames[:, :1], frames], dim=1)  # row t holds frame t - 1
            step = {TOGGLE_KEY: head(audio[:, : t + 1], None, prev)[:, -1],
                    "asset": torch.nn.functional.one_hot(torch.ones(1, N, dtype=torch.long), 10).float(),
                    "scale": torch.zeros(1, N), "position": torch.zeros(1, N, 2), "crop": torch.zeros(1, N, 4)}
            frame = apply_toggles(truth[:, t - 1, : N * P], frames[:, -1, : N * P], step, (1,), 0.5,
                                  toggle_ready(prev, (1,)))  # fmt: skip
            frames = torch.cat([frames, torch.nn.functional.pad(frame, (0, truth.shape[-1] - N * P))[:, None]], 1)
        made = np.flatnonzero(np.diff((frames[0, :, P] > 0.5).numpy().astype(int))) + 1
        true = np.flatnonzero(np.diff((truth[0, :, P] > 0.5).numpy().astype(int))) + 1
        turns = np.flatnonzero(np.asarray(arrays["audio"])[:, AUDIO.index("speaker_turn")])
        assert len(made) == len(true), (v.video_id, made, true, turns)
        assert ((true - made >= 0) & (true - made <= lag)).all(), (v.video_id, made, true)
        switches += len(true)
    assert switches > 0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), threshold=st.floats(0.05, 0.95))
def test_a_toggle_track_switches_where_its_head_fires_and_nowhere_else(seed, threshold):
    gen = torch.Generator().manual_seed(seed)
    b, K = 4, 10
    prev = torch.zeros(b, N, P)
    prev[:, :, 0] = (torch.rand(b, N, generator=gen) > 0.5).float()
    prev[:, :, 1] = prev[:, :, 0] * torch.randint(0, K, (b, N), generator=gen)
    frame = torch.rand(b, N, P, generator=gen)  # whatever the other heads decided
    frame[:, :, 0] = (frame[:, :, 0] > 0.5).float()
    step = {TOGGLE_KEY: torch.randn(b, 2, generator=gen) * 3, "asset": torch.randn(b, N, K, generator=gen),
            "scale": torch.randn(b, N, generator=gen), "position": torch.randn(b, N, 2, generator=gen),
            "crop": torch.randn(b, N, 4, generator=gen)}  # fmt: skip
    out = apply_toggles(frame.reshape(b, -1), prev.reshape(b, -1), step, (0, 2), threshold).reshape(b, N, P)
    fires = torch.sigmoid(step[TOGGLE_KEY]) >= threshold
    torch.testing.assert_close(out[:, 1], frame[:, 1], rtol=0, atol=0)  # not a toggle track: untouched
    for j, tr in enumerate((0, 2)):
        was_on = prev[:, tr, 0] > 0.5
        on = out[:, tr, 0] > 0.5
        assert torch.equal(on, was_on ^ fires[:, j])
        stays = on & was_on
        assert torch.equal(out[stays, tr, 1], prev[stays, tr, 1])  # on and staying on: its asset
        comes = on & ~was_on
        assert torch.equal(out[comes, tr, 1], step["asset"][comes, tr].argmax(-1).float())
        assert (out[~on, tr] == 0).all()  # an inactive track holds zeros


def test_the_target_is_a_switch_now_or_in_the_next_frames():
    on = np.array([0, 0, 0, 0, 1, 1, 1, 0, 0, 0], bool)
    target = toggle_targets(frames_of(on), (1,), ahead=3)[0, :, 0].numpy()
    assert target.tolist() == [False, False, True, True, True, True, True, True, False, False]
    assert toggle_targets(frames_of(on), (1,), ahead=1)[0, :, 0].numpy().nonzero()[0].tolist() == [4, 7]


def test_a_model_file_from_before_toggle_heads_rebuilds_without_one():
    raw = ModelConfig(toggle_tracks=(1,)).to_dict()
    del raw["toggle_tracks"]
    config = ModelConfig.from_dict(raw)
    assert config.toggle_tracks == ()
    assert build_model(config).toggle is None
    with pytest.raises(ValueError, match=r"toggle_tracks must be distinct track indices within 0\.\.19, got \[20\]"):
        ModelConfig(toggle_tracks=(20,))
