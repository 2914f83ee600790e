"""`trackfusion edit`: a trained model applied to a recording it has never seen (issue 11)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import torch
import yaml

from tests.strategies.corpus import write_corpus
from trackfusion import cli, cuts, schema
from trackfusion.data.synthetic import generate_corpus
from trackfusion import selection
from trackfusion.experiment.edit import edit_recording, opening_layout, parse_target, recording_batch
from trackfusion.io.timeline import import_timeline
from trackfusion.learn.checkpoint import save_checkpoint
from trackfusion.learn.model import EditTransformer, ModelConfig
from trackfusion.learn.selection_model import SelectionConfig, SelectionModel, save_selection
from trackfusion.params import SyntheticParams, params_from_dict

TINY = {"model": {"d_model": 16, "nhead": 2, "num_encoder_layers": 1, "dim_feedforward": 32, "seq_len": 16},
        "train": {"stride": 8}, "predict": {"context": 8}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("edit")
    raw = root / "raw"
    summary = generate_corpus(raw, SyntheticParams(seed=3, num_videos=2, min_duration_s=20, max_duration_s=25))
    params = params_from_dict(TINY)
    torch.manual_seed(0)
    model_path = root / "multimodal.pt"
    save_checkpoint(model_path, EditTransformer(ModelConfig.from_params(params, "multimodal")),
                    extra={"cut_decoding": {"threshold": 0.5, "spacing": 30}})  # fmt: skip (few cuts: a quick XML)
    corpus = write_corpus(root / "normalized", [10], ["train"], track_std=20.0)  # the training corpus' statistics
    (root / "params.yaml").write_text(yaml.safe_dump(TINY))
    vid = summary["video_ids"][0]
    torch.manual_seed(0)  # the selection model's weights do not depend on the layout model's size
    selection_path = save_selection(root / "selection.pt", SelectionModel(SelectionConfig(hidden=8)),
                                    extra={"decoding": selection.SelectionDecoding(min_clip_s=2.0).to_dict()})
    return {"root": root, "features": raw / "features", "model": model_path, "corpus": corpus, "params": params,
            "vid": vid, "params_file": root / "params.yaml", "selection": selection_path}  # fmt: skip


def test_the_recording_becomes_one_batch_on_the_frame_grid_opening_on_the_recording(setup: dict) -> None:
    batch, start, _ = recording_batch(setup["vid"], setup["features"], setup["params"], setup["corpus"])
    T = batch["targets"].shape[1]
    audio = np.loadtxt(setup["features"] / schema.audio_file_name(setup["vid"]), delimiter=",", skiprows=1,
                       usecols=0)  # fmt: skip
    assert start == pytest.approx(np.ceil(audio[0] * 10 - 1e-6) / 10)
    assert 19 * 10 <= T <= 26 * 10 and batch["audio"].shape == (1, T, 5) and batch["visual"].shape == (1, T, 522)
    assert batch["modality_mask"][..., 2].all() and batch["modality_mask"][..., :2].float().mean() > 0.8
    first = batch["targets"][0, 0].numpy()
    assert first[0] == 1 and first[1] == 0 and not first[schema.NUM_TRACK_PARAMS :].any()  # the recording alone
    assert not batch["targets"][0, 1:].any()  # no true frame after the first exists
    # unavailable content is zero, as the model saw it in training
    assert not batch["audio"][~batch["modality_mask"][..., 0]].any()


@pytest.mark.parametrize("suffix", [".xml", ".otio"])
def test_edit_writes_a_timeline_the_fcp_adapter_reads_back(setup: dict, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"edit{suffix}"
    rc = cli.main(["edit", setup["vid"], "--features", str(setup["features"]), "--out", str(out), "--model",
                   str(setup["model"]), "--corpus", str(setup["corpus"]), "--params", str(setup["params_file"]),
                   "--keep-all"])
    assert rc == 0 and out.is_file()
    back = import_timeline(out, main_media=setup["vid"])
    batch, start, _ = recording_batch(setup["vid"], setup["features"], setup["params"], setup["corpus"])
    played = np.flatnonzero(back.kept)  # an XML has no grid of ours: its frames cover the recording from 0
    assert back.start_time + played[0] / setup["params"].data.fps == pytest.approx(start)
    assert len(played) <= batch["targets"].shape[1]  # an XML drops trailing gaps
    np.testing.assert_array_equal(back.frames[played[0], :2], opening_layout()[:2])
    timeline = otio.adapters.read_from_file(str(out))
    assert timeline.duration().rate == 30.0  # predict.edit_rate: an editing rate
    assert timeline.audio_tracks()[0].find_clips()[0].name == setup["vid"]


def test_the_edit_is_the_predict_stages_roll_out_of_the_recording(setup: dict, tmp_path: Path) -> None:
    """The written edit equals the predict stage's roll-out (its context, decoding, threshold,
    tolerance and placement recall) of the recording's batch, decoded into the files' units and read back."""
    from trackfusion.learn.checkpoint import load_checkpoint
    from trackfusion.learn.rollout import decoding_of, rollout, rollout_context

    params = setup["params"]
    batch, _, track_pre = recording_batch(setup["vid"], setup["features"], params, setup["corpus"])
    model, payload = load_checkpoint(setup["model"])
    _, frames = rollout(model.eval(), batch, rollout_context(params), decoding_of(payload), params.predict.threshold,
                        progress=False, param_tolerance=params.predict.param_tolerance,
                        recall_placement=params.predict.recall_placement,
                        toggle_threshold=params.predict.toggle_threshold)  # fmt: skip
    expected = track_pre.inverse_transform(frames[0].numpy())
    report = edit_recording(setup["vid"], setup["features"], setup["model"], tmp_path / "e.otio", params,
                            setup["corpus"], selection_path=None)  # fmt: skip
    back = import_timeline(tmp_path / "e.otio", main_media=setup["vid"]).frames
    assert len(back) == len(expected) and report["cut_events"] == len(cuts.video_cut_events(expected))
    np.testing.assert_array_equal(cuts.layout(back), cuts.layout(expected))
    np.testing.assert_array_equal(cuts.video_cut_events(back), cuts.video_cut_events(expected))


@pytest.mark.parametrize("recording, message", [("nobody", "no feature tables for 'nobody'"),
                                                ("clip.mp4", "clip.mp4: no such file")])
def test_a_recording_without_tables_is_one_clear_error(setup: dict, tmp_path: Path, capsys, recording: str,
                                                       message: str) -> None:  # fmt: skip
    rc = cli.main(["edit", recording, "--features", str(setup["features"]), "--out", str(tmp_path / "e.xml"),
                   "--model", str(setup["model"]), "--corpus", str(setup["corpus"])])
    err = capsys.readouterr().err
    assert rc == 1 and message in err and err.startswith("error: ") and not (tmp_path / "e.xml").exists()


def test_the_default_params_say_how_an_edit_opens() -> None:
    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    assert raw["edit"]["opening_scale"] == 100
    assert json.loads(json.dumps(opening_layout(100.0).tolist()))[:5] == [1.0, 0.0, 100.0, 960.0, 540.0]


def test_edit_of_a_video_file_extracts_its_tables_first(setup: dict, tmp_path: Path, clip_folder: Path) -> None:
    """RECORDING may be a video file: `extract` makes its tables (CLIP as extract.clip says), then the same edit runs."""
    pytest.importorskip("av", reason="the [extract] extra")
    from tests.strategies.media import make_known_recording as make_recording

    import tempfile

    video = make_recording(tmp_path / "new take.mp4")
    out = tmp_path / "edit.xml"
    before = set(Path(tempfile.gettempdir()).glob("trackfusion-edit-*"))
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({**TINY, "extract": {"clip_model": str(clip_folder)}}))
    rc = cli.main(["edit", str(video), "--out", str(out), "--model", str(setup["model"]), "--corpus",
                   str(setup["corpus"]), "--params", str(params_file), "--keep-all"])  # fmt: skip
    assert rc == 0
    back = import_timeline(out, main_media="new take")
    assert 0 < len(back.frames) <= 60 and back.report["time_base"] in ("main_clip", "main_audio")
    assert set(Path(tempfile.gettempdir()).glob("trackfusion-edit-*")) == before  # the tables were temporary


@pytest.mark.parametrize("text, expected", [("2min", (120.0, None)), ("90s", (90.0, None)), ("1m30s", (90.0, None)),
                                            ("1:30", (90.0, None)), ("120", (120.0, None)), ("25%", (None, 0.25)),
                                            ("1h", (3600.0, None))])
def test_a_target_is_a_length_or_a_share(text: str, expected: tuple) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize("text", ["", "0s", "soon", "150%", "-2min", "0%"])
def test_a_target_that_is_neither_says_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="give a length"):
        parse_target(text)


@pytest.mark.parametrize("target, seconds", [("10s", 10.0), ("50%", None)])
def test_edit_to_a_target_writes_jump_cuts_the_fcp_adapter_reads_back(setup: dict, tmp_path: Path, target: str,
                                                                      seconds: float | None) -> None:
    """Issue 22: `edit --target` keeps what the selection model picks, to the target (+-10 %), as jump cuts
    in recording order; the layout model's overlays sit on the kept frames only."""
    out = tmp_path / "highlights.xml"
    rc = cli.main(["edit", setup["vid"], "--features", str(setup["features"]), "--out", str(out), "--model",
                   str(setup["model"]), "--corpus", str(setup["corpus"]), "--params", str(setup["params_file"]),
                   "--selection", str(setup["selection"]), "--target", target])
    assert rc == 0 and out.is_file()
    back = import_timeline(out, main_media=setup["vid"])
    batch, start, _ = recording_batch(setup["vid"], setup["features"], setup["params"], setup["corpus"])
    fps, n = setup["params"].data.fps, batch["targets"].shape[1]
    kept_s = back.kept.sum() / fps
    want = seconds if seconds is not None else 0.5 * n / fps
    assert abs(kept_s - want) <= 0.1 * want
    assert back.kept.any() and not back.kept.all() and not back.frames[back.kept == 0].any()
    runs = selection.segments(back.kept.astype(bool))
    assert (np.diff(runs[:, 0]) > 0).all()  # stretches in recording order, each one played once
    assert (runs[:, 1] - runs[:, 0] >= 2 * fps - 1).all()  # none shorter than the decoding's minimum clip


def test_edit_of_a_generated_recording_to_a_target_is_a_highlight_edit(setup: dict, tmp_path: Path,
                                                                     clip_folder: Path) -> None:
    """Issue 22, end to end from a video file: extract, select to the target, lay out, write FCP 7 XML that
    the adapter reads back as jump cuts of the target's length."""
    pytest.importorskip("av", reason="the [extract] extra")
    from tests.strategies.media import make_known_recording as make_recording

    video = make_recording(tmp_path / "new take.mp4")
    out = tmp_path / "highlights.xml"
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({**TINY, "extract": {"clip_model": str(clip_folder)}}))
    rc = cli.main(["edit", str(video), "--out", str(out), "--model", str(setup["model"]), "--corpus",
                   str(setup["corpus"]), "--params", str(params_file), "--selection", str(setup["selection"]),
                   "--target", "3s"])  # fmt: skip
    assert rc == 0
    back = import_timeline(out, main_media="new take")
    assert abs(back.kept.sum() / 10 - 3.0) <= 0.3 and not back.kept.all()


def test_a_model_of_the_synthetic_corpus_warns_on_a_real_recording(tmp_path: Path, caplog, monkeypatch) -> None:
    """Issue 25: the default model applied to a real recording said nothing; its edit there means nothing."""
    from trackfusion.experiment.edit import warn_if_synthetic

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "synthetic" / "features").mkdir(parents=True)
    synthetic_model = {"extra": {"params": json.dumps({"data": {"raw_dir": "data/synthetic"}})}}
    assert warn_if_synthetic(synthetic_model, "models/multimodal.pt", tmp_path / "my tables")
    assert "trained on the synthetic corpus" in caplog.text and "Using your own data" in caplog.text
    assert not warn_if_synthetic(synthetic_model, "m.pt", tmp_path / "data" / "synthetic" / "features")
    yours = {"extra": {"params": json.dumps({"data": {"raw_dir": "data/recordings"}})}}
    assert not warn_if_synthetic(yours, "m.pt", tmp_path / "my tables") and not warn_if_synthetic({}, "m.pt", tmp_path)


def test_edit_of_a_29_97_recording_writes_mlt_at_its_rate_and_renders_it(setup: dict, tmp_path: Path,
                                                                        clip_folder: Path) -> None:
    """Issue 25: `edit ... --out edit.mlt --render preview.mp4`: the export at the recording's own 29.97 fps, and
    a preview that plays the kept stretches (its length the edit's, +-1 frame)."""
    av = pytest.importorskip("av", reason="the [extract] extra")
    import xml.etree.ElementTree as ET
    from fractions import Fraction

    from tests.strategies.media import make_numbered_recording

    video = make_numbered_recording(tmp_path / "ntsc take.mp4", 8, Fraction(30000, 1001), tones=(2.0,))
    out, preview = tmp_path / "highlights.mlt", tmp_path / "preview.mp4"
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({**TINY, "extract": {"clip_model": str(clip_folder)}}))
    rc = cli.main(["edit", str(video), "--out", str(out), "--model", str(setup["model"]), "--corpus",
                   str(setup["corpus"]), "--params", str(params_file), "--selection", str(setup["selection"]),
                   "--target", "4s", "--render", str(preview)])  # fmt: skip
    assert rc == 0
    profile = ET.parse(out).getroot().find("profile")
    assert (profile.get("frame_rate_num"), profile.get("frame_rate_den")) == ("30000", "1001")
    sound = [pl for pl in ET.parse(out).getroot().findall("playlist") if pl.find("property[@name='shotcut:audio']")
             is not None][0]  # the recording's sound: one entry per kept stretch, frames at 29.97
    edit_frames = sum(int(e.get("out")) - int(e.get("in")) + 1 for e in sound.findall("entry"))
    with av.open(str(preview)) as c:
        v = c.streams.video[0]
        assert v.average_rate == Fraction(30000, 1001)
        n = sum(1 for _ in c.decode(v))
    assert abs(edit_frames - 4.0 * 30000 / 1001) <= 0.1 * 4.0 * 30  # the target's length, +-10 %
    assert abs(n - edit_frames) <= 1  # the preview plays the edit: its length, +-1 frame
