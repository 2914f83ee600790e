"""`trackfusion extract`: feature tables from a recording generated here (issue 11)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.strategies import media
from tests.strategies.media import BLOCK, BURSTS, CUTS, FPS, H, SECONDS, SR, W, known_picture as _picture
from tests.strategies.media import make_known_recording as make_recording
from trackfusion import cli, schema
from trackfusion.data.extract import ExtractError, extract_recording, extract_recordings
from trackfusion.data.validation import validate_raw
from trackfusion.io.features import read_audio_csv, read_visual_csv
from trackfusion.io.sequences import TrackData, write_sequences
from trackfusion.params import ExtractParams, params_from_dict

pytest.importorskip("av", reason="the [extract] extra")  # CI installs it (make install)

@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("extract")
    video = make_recording(root / "my recording 01.mp4")
    params = ExtractParams(visual_every=3)  # 10 visual rows per second
    result = extract_recording(video, root / "raw", params, progress=False)
    return {"root": root, "raw": root / "raw", "result": result, "stem": "my recording 01"}


def test_the_tables_follow_the_recordings_events(extracted: dict) -> None:
    audio = read_audio_csv(extracted["raw"] / "features" / schema.audio_file_name(extracted["stem"]))
    visual = read_visual_csv(extracted["raw"] / "features" / schema.visual_file_name(extracted["stem"]))
    names = [c.name for c in schema.VISUAL_SCALARS]
    scene, motion = visual.values[:, names.index("scene_change")], visual.values[:, names.index("visual_motion")]
    t = visual.times
    step = float(np.median(np.diff(t)))
    for cut in CUTS:  # a scene change lands within one sample of each cut, nowhere else
        near = np.abs(t - cut) <= step + 1e-6
        assert scene[near].max() > 0.25
    far = np.all([np.abs(t - c) > step + 1e-6 for c in CUTS], axis=0) & ~((t >= BLOCK[0]) & (t <= BLOCK[1] + step))
    assert scene[far].max() < 0.05
    moving = (t > BLOCK[0] + step) & (t < BLOCK[1] - step) & np.all([np.abs(t - c) > step for c in CUTS], axis=0)
    still = far
    assert motion[moving].min() > 5 * max(motion[still].max(), 1e-3)  # motion rises while the block moves
    rms = audio.values[:, [c.name for c in schema.AUDIO_INPUTS].index("audio_energy_rms")]
    at = audio.times
    inside = np.any([(at >= a + 0.1) & (at < b - 0.1) for a, b in BURSTS], axis=0)
    outside = ~np.any([(at >= a - 0.15) & (at < b + 0.1) for a, b in BURSTS], axis=0)
    assert rms[inside].min() > 0.3 and rms[outside].max() < 0.02  # RMS follows the bursts (0.5 sine: 0.354)
    speaking = audio.values[:, [c.name for c in schema.AUDIO_INPUTS].index("audio_is_speaking")]
    assert speaking.mean() < 0.2  # tones and silence are not speech
    assert np.isnan(visual.clip.astype(np.float32)).all()  # --no-clip: empty, never made up
    assert audio.issues.nonfinite["text_is_active"] == len(at)  # no transcriber: empty and counted


def test_the_tables_pass_validate_unchanged(extracted: dict) -> None:
    n = int(SECONDS * 10)
    frames = np.zeros((n, schema.TRACK_WIDTH), np.float32)
    frames[:, 0] = 1.0  # the recording on track 1
    frames[:, 2], frames[:, 3], frames[:, 4] = 100.0, 960.0, 540.0
    write_sequences(extracted["raw"] / schema.SEQUENCES_FILE, [TrackData(extracted["stem"], 0.0, frames)])
    report, _ = validate_raw(extracted["raw"], params_from_dict({}))
    s = report["summary"]
    assert (s["videos_ok"], s["read_errors"], s["audio_dim_mismatches"], s["visual_dim_mismatches"]) == (1, 0, 0, 0)
    assert s["audio_coverage_pct"] == 100.0 and s["visual_coverage_pct"] == 100.0


def test_a_bad_file_is_one_error_line_and_the_others_go_on(tmp_path: Path, extracted: dict, caplog) -> None:
    silent = make_recording(tmp_path / "no audio.mp4", audio=False)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    good = make_recording(tmp_path / "good.mp4")
    # two worker processes (extract.workers): each recording is its own job; the order of the result is kept
    summary = extract_recordings([silent, empty, corrupt, good], tmp_path / "out", ExtractParams(workers=2),
                                 progress=False)  # fmt: skip
    assert summary["workers"] == 2
    assert summary["extracted"] == ["good"]
    assert set(summary["failed"]) == {str(silent), str(empty), str(corrupt)}
    assert "has no audio stream" in summary["failed"][str(silent)]
    for path in (silent, empty, corrupt):
        lines = [r.getMessage() for r in caplog.records if r.levelname == "ERROR" and str(path) in r.getMessage()]
        assert len(lines) == 1 and "\n" not in lines[0]
    assert sorted(p.name for p in (tmp_path / "out" / "features").iterdir()) == [
        schema.audio_file_name("good"), schema.visual_file_name("good")]


def test_clip_embeddings_are_held_between_refreshes_and_unit_length_after_alignment(
    tmp_path: Path, clip_folder: Path
) -> None:
    from trackfusion.data.alignment import FeatureAligner

    video = make_recording(tmp_path / "clip me.mp4")
    params = ExtractParams(visual_every=3, clip_model=str(clip_folder), clip_every_s=1.0)
    result = extract_recording(video, tmp_path / "raw", params, clip=True, progress=False)
    visual = read_visual_csv(tmp_path / "raw" / "features" / schema.visual_file_name("clip me"))
    clip = visual.clip
    assert clip.shape == (result.visual_rows, schema.CLIP_DIM) and clip.dtype == np.float16
    assert np.isfinite(clip.astype(np.float32)).all()
    # one embedding a second, held between: the rows of each second are one vector, and the
    # held vector changes only at a refresh (the scene cuts at 2 s and 4 s)
    assert result.clip_refreshes == int(np.ceil(SECONDS / 1.0))
    t = visual.times
    for k in range(int(SECONDS)):
        rows = clip[(t >= k) & (t < k + 1)]
        assert len(rows) and (rows == rows[0]).all(), k
    changes = t[np.flatnonzero(np.any(clip[1:] != clip[:-1], axis=1)) + 1]
    assert set(np.round(changes).astype(int)) >= {2, 4} and np.allclose(changes, np.round(changes), atol=0.01)
    # different scenes give different embeddings (the three colours)
    scenes = [clip[np.argmin(np.abs(t - x))].astype(np.float32) for x in (0.5, 2.5, 4.5)]
    assert not np.allclose(scenes[0], scenes[1]) and not np.allclose(scenes[1], scenes[2])
    # alignment makes them unit length (SPEC property 8)
    frames = np.round(np.arange(0, SECONDS - 0.2, 0.1), 3)
    aligned = FeatureAligner().align_features(frames, read_audio_csv(
        tmp_path / "raw" / "features" / schema.audio_file_name("clip me")), visual, "clip me")  # fmt: skip
    norms = np.linalg.norm(aligned.clip.astype(np.float32), axis=1)
    assert np.allclose(norms[aligned.mask[:, 1]], 1.0, atol=2e-3)


def test_missing_clip_weights_say_so_in_one_line(tmp_path: Path, capsys) -> None:
    video = make_recording(tmp_path / "clip.mp4")
    params = ExtractParams(clip_model=str(tmp_path / "no such weights"))
    with pytest.raises(ExtractError, match="not in the Hugging Face cache or a local folder.*--no-clip") as err:
        extract_recordings([video], tmp_path / "out", params, clip=True, progress=False)
    assert "\n" not in str(err.value) and not (tmp_path / "out").exists()  # one line, before any work
    rc = cli.main(["extract", str(video), "--out", str(tmp_path / "o2"), "--no-clip"])
    out = capsys.readouterr().out
    assert rc == 0 and "column sources" in out and "empty (--no-clip)" in out


def _espeak_speech(text: str) -> tuple[np.ndarray, int]:
    """Speech synthesised by espeak-ng (Debian's espeak-ng; .ci/run installs it): samples in [-1, 1], rate."""
    import os
    import shutil
    import subprocess
    import tempfile
    import wave

    if shutil.which("espeak-ng") is None:
        if os.environ.get("CI"):
            pytest.fail("espeak-ng is missing: .ci/run installs it (apt-get install espeak-ng)")
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["espeak-ng", "-s", "150", "-w", f"{tmp}/speech.wav", text], check=True, timeout=60)
        with wave.open(f"{tmp}/speech.wav") as w:
            rate, raw = w.getframerate(), w.readframes(w.getnframes())
    return np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0, rate


def test_voice_activity_finds_synthesised_speech_and_not_tones_or_silence(tmp_path: Path) -> None:
    """silero-vad on real (synthesised) speech: speech windows are speaking; silence and pure tones are not."""
    speech, rate = _espeak_speech("Welcome back to the stream. Today we are going to build a new base by the river, "
                                  "and then we will look at the results together.")  # fmt: skip
    start = 0.5
    end = start + len(speech) / rate
    seconds = end + 2.5
    tone = (end + 0.7, end + 2.2)

    def sound(t: np.ndarray) -> np.ndarray:
        voice = np.interp(t - start, np.arange(len(speech)) / rate, speech, left=0.0, right=0.0)
        beep = np.where((t >= tone[0]) & (t < tone[1]), 0.4 * np.sin(2 * np.pi * 440 * t), 0.0)
        return voice + beep

    video = media.make_recording(tmp_path / "talk.mp4", seconds, _picture, sound, FPS, W, H, SR)
    extract_recording(video, tmp_path / "raw", ExtractParams(visual_every=6), progress=False)
    audio = read_audio_csv(tmp_path / "raw" / "features" / schema.audio_file_name("talk"))
    names = [c.name for c in schema.AUDIO_INPUTS]
    speaking = audio.values[:, names.index("audio_is_speaking")] > 0.5
    t = audio.times
    during = (t >= start + 0.3) & (t < end - 0.3)
    before = t < start - 0.1
    tones = (t >= tone[0] + 0.1) & (t < tone[1] - 0.1)
    assert speaking[during].mean() > 0.6, speaking[during].mean()  # pauses between words may be silence
    assert not speaking[before].any() and speaking[tones].mean() < 0.1
    silence = audio.values[:, names.index("silence_duration_ms")]
    assert silence[during][speaking[during]].max() == 0  # silence_duration is 0 while speaking
    assert silence[tones].min() > 0  # and grows after the speech ends


def test_a_configured_transcriber_fills_the_words_across_its_chunks(tmp_path: Path, extracted: dict) -> None:
    """extract.transcriber (here a package.module:factory, a user's own): the words and their
    speakers land on the rows where they are spoken, also when the audio reaches the
    transcriber in chunks (1.5 s here)."""
    from tests.strategies.transcribers import ToneWords

    video = make_recording(tmp_path / "words.mp4")
    params = ExtractParams(visual_every=6, transcriber="tests.strategies.transcribers:ToneWords", transcribe_chunk_s=1.5)
    before = ToneWords.calls
    summary = extract_recordings([video], tmp_path / "raw", params, progress=False)
    assert ToneWords.calls - before >= int(SECONDS / 1.5)  # streamed: one call per 1.5 s chunk, never the whole
    assert summary["sources"]["text_word"].endswith("(tests.strategies.transcribers:ToneWords)")
    audio = read_audio_csv(tmp_path / "raw" / "features" / schema.audio_file_name("words"))
    active = audio.values[:, [c.name for c in schema.AUDIO_INPUTS].index("text_is_active")]
    t = audio.times
    inside = np.any([(t >= a + 0.1) & (t < b - 0.1) for a, b in BURSTS], axis=0)
    outside = ~np.any([(t >= a - 0.1) & (t < b + 0.1) for a, b in BURSTS], axis=0)
    assert (active[inside] == 1).all() and (active[outside] == 0).all()  # the burst at 1-2 s spans two chunks
    raw = (tmp_path / "raw" / "features" / schema.audio_file_name("words")).read_text().splitlines()
    header = raw[0].split(",")
    cells = [row.split(",")[header.index("text_word")] for row in raw[1:]]
    assert {c for c, a in zip(cells, active) if a == 1} == {"tone"} and {c for c, a in zip(cells, active) if a == 0} == {""}
    speakers = [row.split(",")[header.index("speaker_id")] for row in raw[1:]]
    assert {c for c, a in zip(speakers, active) if a == 1} == {"host"}  # a diarizing transcriber's speakers
    assert {c for c, a in zip(speakers, active) if a == 0} == {""}


def test_a_missing_transcriber_is_one_line(tmp_path: Path) -> None:
    video = make_recording(tmp_path / "x.mp4")
    with pytest.raises(ExtractError, match="extract.transcriber 'tests.strategies.transcribers:Nobody': cannot load Nobody"):
        extract_recordings([video], tmp_path / "out", ExtractParams(transcriber="tests.strategies.transcribers:Nobody"),
                           progress=False)  # fmt: skip


def test_no_recordings_is_an_empty_features_folder_without_loading_any_model(tmp_path: Path) -> None:
    """The extract stage before any recording is added: nothing to do, so no CLIP weights are needed."""
    params = ExtractParams(clip_model=str(tmp_path / "no such weights"), transcriber="tests.strategies.transcribers:Nobody")
    summary = extract_recordings([], tmp_path / "out", params, clip=True, progress=False)
    assert summary["recordings"] == 0 and summary["extracted"] == [] and not summary["failed"]
    assert (tmp_path / "out" / schema.FEATURES_DIR).is_dir() and not any((tmp_path / "out" / schema.FEATURES_DIR).iterdir())
