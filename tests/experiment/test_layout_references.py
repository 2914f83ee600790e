"""The layout references on tiny corpora whose answer is known (experiment/layout_references.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trackfusion import schema
from trackfusion.data.corpus import Corpus, CorpusWriter
from trackfusion.experiment import layout_references as lr

LENGTH = 150
P = schema.NUM_TRACK_PARAMS
AUDIO = [c.name for c in schema.AUDIO_INPUTS]
VISUAL = [c.name for c in schema.VISUAL_SCALARS]
LOOKS = {0: 0, 4: 1}  # main source -> the CLIP axis its scenes show


def known_video(rng: np.random.Generator, lag: int) -> dict[str, np.ndarray]:
    """Content drawn at random, and an editor that follows every part of it exactly `lag` frames later."""
    scene = np.repeat(rng.choice(list(LOOKS), LENGTH // 15 + 1), 15)[:LENGTH]
    text = np.repeat(rng.random(LENGTH // 10 + 1) < 0.4, 10)[:LENGTH]
    motion = np.repeat(rng.uniform(0, 1, LENGTH // 12 + 1), 12)[:LENGTH]
    turn = rng.random(LENGTH) < 0.03
    turn[0] = False
    clip = np.zeros((LENGTH, schema.CLIP_DIM), np.float32)
    clip[np.arange(LENGTH), [LOOKS[s] for s in scene]] = 1.0
    clip += rng.normal(0, 0.05, clip.shape).astype(np.float32)
    audio = np.zeros((LENGTH, schema.AUDIO_WIDTH), np.float32)
    audio[:, AUDIO.index("text_is_active")] = text
    audio[:, AUDIO.index("speaker_turn")] = turn
    visual = np.zeros((LENGTH, schema.VISUAL_SCALAR_WIDTH), np.float32)
    visual[:, VISUAL.index("visual_motion")] = motion

    def later(x: np.ndarray) -> np.ndarray:
        return np.concatenate([np.repeat(x[:1], lag), x[: LENGTH - lag]])

    track = np.zeros((LENGTH, schema.NUM_TRACKS, P), np.float32)
    face_on = bool(rng.random() < 0.5)
    states = {0: (np.ones(LENGTH, bool), later(scene)),
              1: ((np.cumsum(later(turn) * (np.arange(LENGTH) >= lag)) + face_on) % 2 == 1, 1),
              2: (later(text), 2), 3: (later(motion >= 0.5), 3)}
    for t, (on, asset) in states.items():
        track[:, t, 0], track[:, t, 1] = on, asset
        track[:, t, 2:] = [120.0, 960.0, 540.0, 0, 0, 5.0, 5.0] if t == 0 else [40.0 + 10 * t, 300.0, 200.0, 2, 2, 0, 0]
        track[:, t] *= on[:, None]
    return {"audio": audio, "visual": visual, "clip": clip.astype(np.float16),
            "track": track.reshape(LENGTH, -1), "mask": np.ones((LENGTH, 3), bool),
            "times": (np.arange(LENGTH) / schema.FPS)[:, None]}


def write_corpus(path: Path, lag: int, splits: tuple[str, ...] = ("train", "train", "val", "test", "test")) -> Path:
    rng = np.random.default_rng(lag)
    with CorpusWriter(path, fps=schema.FPS, meta={"source": "tests.test_layout_references"}) as writer:
        for i, split in enumerate(splits):
            writer.append(f"video {i}", split, 0.0, **known_video(rng, lag))
    return path


@pytest.mark.parametrize("lag", [1, 2])
def test_the_layout_rule_follows_an_editor_that_follows_the_content(tmp_path, lag):
    rows = lr.run_layout_references(Corpus(write_corpus(tmp_path / "c", lag)))
    rule = rows["layout_rule"]
    assert rule["lag"] == lag and rule["motion"] <= 0.5
    assert rule["layout_accuracy"] == 1.0 and rule["per_track"][:4] == [1.0] * 4
    assert rule["position_mae"] == 0.0 and rule["scale_mae"] == 0.0  # first-frame or train-median placement
    assert rows["hold"]["layout_accuracy"] < 0.5 < rule["layout_accuracy"]
    assert rows["hold"]["frames"] == rule["frames"] == 2 * (LENGTH - 1)  # the first frame is given
    assert "layout_ceiling" not in rows  # no raw folder: a user's corpus has no ceiling


def test_the_rule_holds_a_track_while_its_feature_is_unavailable(tmp_path):
    corpus = Corpus(write_corpus(tmp_path / "c", 1))
    video = lr.load_layout_videos(corpus, ["test"])[0]
    fit = lr.RuleFit(lr.load_layout_videos(corpus, ["train", "val"]))
    video.text[40:80] = np.nan  # the audio file has a gap
    frames = lr.rule_frames(video, fit, lag=1, motion=0.5).reshape(LENGTH, -1, P)
    text_on = frames[:, lr.TRACK_TEXT, 0]
    assert (text_on[41:81] == text_on[40]).all()


def test_the_ceiling_row_scores_the_recorded_timeline_and_is_left_out_when_it_does_not_fit(tmp_path):
    corpus = Corpus(write_corpus(tmp_path / "c", 2))
    raw = tmp_path / "raw"
    raw.mkdir()
    truth = {v.video_id: corpus.edit_arrays(v.video_id)["track"] for v in corpus.videos}
    np.savez(raw / schema.CEILING_LAYOUT_FILE, **truth)
    rows = lr.run_layout_references(corpus, raw)
    assert rows["layout_ceiling"]["layout_accuracy"] == 1.0 and rows["layout_ceiling"]["crop_mae"] == 0.0
    np.savez(raw / schema.CEILING_LAYOUT_FILE, **{k: v[:-1] for k, v in truth.items()})  # one frame short
    assert "layout_ceiling" not in lr.run_layout_references(corpus, raw)


def test_train_median_places_every_track_at_the_median_and_keeps_the_opening_layout(tmp_path):
    corpus = Corpus(write_corpus(tmp_path / "c", 1))
    videos = lr.load_layout_videos(corpus, ["train", "val"])
    fit = lr.RuleFit(videos)
    held = lr.held_frames(videos[0], fit.medians).reshape(LENGTH, -1, P)
    first = videos[0].track[0].reshape(-1, P)
    assert (held[:, :, 0] == first[:, 0]).all() and (held[:, :, 1] == first[:, 1]).all()
    assert held[5, 0, 2] == 120.0 and held[5, 0, 3] == 960.0  # main footage: the same placement everywhere


def test_the_timeline_picture_shows_the_rule_beside_the_rollouts_of_each_example_video(tmp_path):
    from trackfusion.experiment.compare import plot_timelines

    corpus = Corpus(write_corpus(tmp_path / "c", 1))
    rows = lr.run_layout_references(corpus)
    examples = [(corpus.edit_arrays(v.video_id)["track"], {"multimodal roll-out": corpus.edit_arrays(v.video_id)["track"]},
                 10.0, v.video_id) for v in corpus.split_videos("test")]
    shown = lr.with_layout_rule(examples, corpus, {"layout": rows})
    assert [vid for *_, vid in shown] == [vid for *_, vid in examples]
    for (truth, preds, _, vid), (_, before, _, _) in zip(shown, examples):
        assert list(preds) == ["layout rule", *before]
        np.testing.assert_array_equal(preds["layout rule"], lr.rule_frames(
            lr.LayoutVideo(corpus.video(vid), corpus.edit_arrays(vid)), lr.RuleFit(lr.load_layout_videos(
                corpus, ["train", "val"])), rows["layout_rule"]["lag"], rows["layout_rule"]["motion"]))
    assert lr.with_layout_rule(examples, corpus, {}) == examples  # a corpus without the rule's knobs: no row
    plot_timelines(shown, tmp_path / "timeline.png")
    assert (tmp_path / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
