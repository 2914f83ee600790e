"""The roll-out on its own (learn/rollout.py): what it reads, what it holds, when it cuts."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies.model import batches, model_configs
from trackfusion import cuts, params, schema
from trackfusion.learn.model import EditTransformer
from trackfusion.learn.rollout import hold_parameters, recall_placements, rollout, rollout_context

pytestmark = pytest.mark.usefixtures("one_torch_thread")
P = schema.NUM_TRACK_PARAMS
DECODING = cuts.CutDecoding(threshold=0.5, spacing=1)


def tiny_model(config) -> EditTransformer:
    torch.manual_seed(0)
    return EditTransformer(config).eval()


@settings(max_examples=15)
@given(config=model_configs(), data=st.data())
def test_the_rollout_reads_no_true_frame_after_the_first(config, data):
    batch = data.draw(batches(config, max_len=8))
    model = tiny_model(config)
    outputs, frames = rollout(model, batch, context=4, decoding=DECODING, progress=False)
    other = dict(batch)
    scrambled = batch["targets"].clone()
    scrambled[:, 1:] = torch.flip(scrambled[:, 1:], dims=[1]) + 1.0
    other["targets"] = scrambled
    other["prev_track"] = torch.zeros_like(batch["prev_track"])  # the model's own frames are its track input
    outputs2, frames2 = rollout(model, other, context=4, decoding=DECODING, progress=False)
    torch.testing.assert_close(frames, frames2, rtol=0, atol=0)
    torch.testing.assert_close(frames[:, 0], batch["targets"][:, 0], rtol=0, atol=0)  # the opening layout is given


@settings(max_examples=10)
@given(config=model_configs(), data=st.data())
def test_a_model_that_never_fires_keeps_the_opening_layout(config, data):
    batch = data.draw(batches(config, max_len=8, padded=False))
    model = tiny_model(config)
    never = cuts.CutDecoding(threshold=1.5, spacing=1)  # a probability never reaches 1.5
    # nor does its toggle head's, which alone switches a toggle track
    _, frames = rollout(model, batch, context=4, decoding=never, progress=False, toggle_threshold=1.5)
    layouts = cuts.layout(frames.reshape(*frames.shape[:2], -1, P).numpy())
    first = cuts.layout(frames[:, :1].reshape(frames.shape[0], 1, -1, P).numpy())
    assert (layouts == first).all()


def test_parameters_hold_within_the_tolerance_on_a_track_that_keeps_its_layout():
    prev = torch.zeros(1, 2 * P)
    prev[0, 0], prev[0, 1], prev[0, 2] = 1.0, 3.0, 0.5  # track 0 on, asset 3, scale 0.5
    frame = prev.clone()
    frame[0, 2], frame[0, 3] = 0.55, 2.0  # scale drifts a little, position moves far
    held = hold_parameters(frame, prev, tolerance=0.1)
    assert held[0, 2] == 0.5 and held[0, 3] == 2.0
    assert torch.equal(hold_parameters(frame, prev, tolerance=0.0), frame)
    switched = frame.clone()
    switched[0, 1] = 4.0  # a new asset: its parameters are the model's, not held
    assert hold_parameters(switched, prev, tolerance=0.1)[0, 2] == pytest.approx(0.55)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), T=st.integers(2, 30), tracks=st.integers(1, 4))
def test_a_track_that_comes_back_on_comes_back_where_it_last_showed(seed, T, tracks):
    """Issue 23: rolled out, the face cam came back mid-picture (155 px off); the editor puts it where it was."""
    g = torch.Generator().manual_seed(seed)
    decoded = torch.rand(T, 1, tracks, P, generator=g) * 10  # what the heads decode, frame by frame
    decoded[..., 0] = (torch.rand(T, 1, tracks, generator=g) < 0.5).float()  # on / off
    out = [decoded[0].reshape(1, -1)]  # the given first frame
    shown = out[0].clone()
    for t in range(1, T):
        frame, shown = recall_placements(decoded[t].reshape(1, -1), out[-1], shown)
        out.append(frame)
    frames = torch.stack(out).reshape(T, tracks, P)
    assert torch.equal(frames[..., :2], decoded[:, 0, :, :2])  # on / off and asset are never touched
    for k in range(tracks):
        last = None  # placement where track k last showed
        for t in range(T):
            on = bool(frames[t, k, 0] > 0.5)
            came_back = t > 0 and on and not bool(frames[t - 1, k, 0] > 0.5) and last is not None
            expected = last if came_back else decoded[t, 0, k, 2:]
            assert torch.equal(frames[t, k, 2:], expected), (t, k)
            if on:
                last = frames[t, k, 2:]


def test_the_rollout_context_is_at_most_the_training_window():
    p = params.Params()
    assert rollout_context(p) == min(p.predict.context, p.model.seq_len)
    short = dataclasses.replace(p, model=dataclasses.replace(p.model, seq_len=4),
                                predict=dataclasses.replace(p.predict, context=64))
    assert rollout_context(short) == 4


class ReadsTheContent(torch.nn.Module):
    """A real model whose state head for one track reads the content exactly: sure "on" where audio
    column 0 is positive, sure "off" elsewhere (what a trained state head does for a text overlay)."""

    def __init__(self, model: EditTransformer, track: int, lag: int):
        super().__init__()
        self.model, self.track, self.lag = model, track, lag

    def forward_batch(self, batch: dict) -> dict:
        out = self.model.forward_batch(batch)
        shows = batch["audio"][..., 0] > 0  # (b, t): the content shows the overlay
        if self.lag:
            shows = torch.cat([torch.zeros_like(shows[:, : self.lag]), shows[:, : -self.lag]], dim=1)[:, -shows.shape[1]:]
        out["state_active"] = out["state_active"].clone()
        out["state_active"][..., self.track] = torch.where(shows, 10.0, -10.0)
        out["state_asset"] = out["state_asset"].clone()
        out["state_asset"][..., self.track, :] = -10.0
        out["state_asset"][..., self.track, -1] = 10.0  # the track's asset: the last class
        return out


@settings(max_examples=15, deadline=None)
@given(config=model_configs(fusion_types=("concat",)), data=st.data())
def test_property_rollout_a_state_head_that_reads_the_content_recovers_a_wrong_opening_state(config, data):
    """Issue 23: a wrongly initialised track is right again as soon as the content shows its state."""
    config = dataclasses.replace(config, num_tracks=3, cut_context="content",  # the content encoder: state heads
                                 toggle_tracks=())  # and no toggle head: every track follows the state heads
    batch = data.draw(batches(config, max_len=16, padded=False, partial_modalities=False))
    lag = data.draw(st.integers(0, 2))
    model = ReadsTheContent(tiny_model(config), track=2, lag=lag)
    shows = batch["audio"][..., 0] > 0  # (B, T)
    batch["targets"][:, 0, 2 * P] = (~shows[:, 0]).float()  # the opening layout says the opposite
    asset = float(config.max_asset_classes - 1)
    batch["targets"][:, 0, 2 * P + 1] = asset
    _, frames = rollout(model, batch, context=4, decoding=DECODING, progress=False, state_confidence=0.9)
    on = frames[..., 2 * P] > 0.5  # (B, T)
    T = on.shape[1]
    if T > lag + 1:
        assert torch.equal(on[:, lag + 1 :], shows[:, 1 : T - lag])  # from the first frame the content decides
    assert (frames[..., 2 * P + 1][on] == asset).all()
    # the track heads alone (state_confidence 1) are not bound to the content: they may keep the wrong state
    _, old = rollout(model, batch, context=4, decoding=cuts.CutDecoding(threshold=1.5), progress=False)
    assert torch.equal(old[:, :, 2 * P] > 0.5, batch["targets"][:, :1, 2 * P].expand(-1, T) > 0.5)
