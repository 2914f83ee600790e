"""The feature files: a recording's content sampled at the files' own times, faults injected.

Audio every 0.1 s with +-10 ms jitter: energy (speech level or room noise),
``audio_is_speaking``, ``silence_duration_ms`` (time since the last speech ended),
``speaker_id`` (empty in silence and in unlabelled segments), ``text_is_active`` and
``text_word`` (the caption, quoted in the CSV because it contains commas). Visual every
5th frame of 60 fps (1/12 s) from a random phase with +-6 ms jitter, nudged at least
3 ms off the 0.1 s grid: ``scene_change`` near 1 on the first 1-3 samples of a scene,
else near 0; ``visual_motion`` high in bursts; saliency empty in 30 % of rows;
``face_count`` from the scene (dropping to 0 in 5 % of rows), face fields empty where
it is 0 and in 15 % of the other rows, mouth open while someone speaks; CLIP refreshed
every 10-14 samples (about 1 s) and at each scene start, held in between, with a random
norm in [6, 14] (never unit length).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trackfusion import schema
from trackfusion.data.synthetic.content import CAPTIONS, Content, Recording, unit
from trackfusion.data.synthetic.faults import assign_faults, plan_rows
from trackfusion.io.features import write_audio_csv, write_visual_csv

AUDIO_STEP_S = 0.1  # real audio tables are sampled every 0.1 s
VISUAL_STEP_S = 5 / 60  # every 5th frame of a 60 fps recording
OFF_GRID_S = 0.003  # visual times stay at least this far from the 0.1 s grid
#: the float columns of each table a non-finite value may hit
FAULTY_COLUMNS = {
    "audio": ("audio_energy_rms", "silence_duration_ms"),
    "visual": ("scene_change", "visual_motion", "face_size"),
}


def _take(values: np.ndarray, index: np.ndarray, fill: Any) -> np.ndarray:
    """values[index] where index >= 0, else `fill` (also when `values` is empty)."""
    if len(values) == 0:
        return np.full(len(index), fill)
    return np.where(index >= 0, values[np.maximum(index, 0)], fill)


def interval_index(starts: np.ndarray, ends: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index of the interval containing each time, -1 outside all (intervals sorted, disjoint)."""
    i = np.searchsorted(starts, t, side="right") - 1
    inside = (i >= 0) & (t < ends[np.maximum(i, 0)]) if len(starts) else np.zeros(len(t), bool)
    return np.where(inside, i, -1)


def _audio_times(rng: np.random.Generator, horizon: float, irregular: bool) -> np.ndarray:
    t = np.arange(int(horizon / AUDIO_STEP_S) + 1) * AUDIO_STEP_S
    jitter = 0.04 if irregular else 0.01
    t = t + np.clip(rng.normal(0, jitter / 3, len(t)), -jitter, jitter)
    t[0] = abs(t[0])
    return t


def _visual_times(rng: np.random.Generator, horizon: float, irregular: bool) -> np.ndarray:
    n = int(horizon / VISUAL_STEP_S) + 1
    jitter = 0.02 if irregular else 0.006
    t = rng.uniform(0.005, 0.075) + np.arange(n) * VISUAL_STEP_S
    t = t + np.clip(rng.normal(0, jitter / 3, n), -jitter, jitter)
    d = t / AUDIO_STEP_S - np.round(t / AUDIO_STEP_S)  # distance to the 0.1 s grid, in steps
    near = np.abs(d) < OFF_GRID_S / AUDIO_STEP_S
    t[near] += (np.where(d[near] >= 0, 1.0, -1.0) * OFF_GRID_S / AUDIO_STEP_S - d[near]) * AUDIO_STEP_S
    return t


def audio_columns(c: Content, t: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    """Audio table columns at sample times `t` (name -> values)."""
    seg = interval_index(c.speech_starts, c.speech_ends, t)
    speaking = seg >= 0
    n = len(t)
    energy = np.where(
        speaking, _take(c.speech_level, seg, 0.0) * (1 + 0.25 * rng.standard_normal(n)), rng.uniform(0.003, 0.015, n)
    )
    last_end = np.searchsorted(c.speech_ends, t, side="right") - 1
    since = t - _take(c.speech_ends, last_end, 0.0)
    label = speaking & _take(c.speech_labelled, seg, False)
    names = np.array(("",) + c.speaker_names, dtype=object)
    txt = interval_index(c.text_starts, c.text_ends, t)
    captions = np.array(("",) + CAPTIONS, dtype=object)
    return {
        "audio_energy_rms": np.maximum(energy, 0.0),
        "audio_is_speaking": speaking.astype(np.float64),
        "silence_duration_ms": np.where(speaking, 0.0, np.round(since * 1000)),
        schema.SPEAKER_ID: names[np.where(label, _take(c.speech_speaker, seg, -1) + 1, 0)],
        "text_is_active": (txt >= 0).astype(np.float64),
        schema.TEXT_WORD: captions[_take(c.text_caption, txt, -1) + 1],
    }


def visual_columns(
    c: Content, t: np.ndarray, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Visual scalars at times `t`, plus CLIP holds: (scalars, hold per row (N,), hold vectors (H, 512))."""
    n = len(t)
    scene = np.searchsorted(c.scene_starts, t, side="right") - 1
    first = np.searchsorted(t, c.scene_starts)  # first sample of each scene
    rank = np.arange(n) - first[scene]
    n_spike = rng.integers(1, 4, len(c.scene_starts))
    spike = (scene > 0) & (rank < n_spike[scene])
    scene_change = np.where(
        spike, 0.96 - 0.25 * rank + rng.normal(0, 0.02, n), np.abs(rng.normal(0, 0.03, n)) + 0.01
    )
    burst = interval_index(c.motion_starts, c.motion_ends, t)
    motion = np.where(burst >= 0, _take(c.motion_level, burst, 0.0), rng.uniform(0.05, 0.2, len(c.scene_starts))[scene])
    motion = np.maximum(motion + rng.normal(0, 0.04, n), 0.0)
    saliency = np.clip(c.scene_saliency[scene] + rng.normal(0, 0.03, (n, 2)), 0, 1)
    saliency[rng.random(n) < 0.3] = np.nan
    faces = c.scene_faces[scene] * (rng.random(n) >= 0.05)
    speaking = interval_index(c.speech_starts, c.speech_ends, t) >= 0
    geom = c.scene_face_geom[scene] + rng.normal(0, 0.01, (n, 3))
    mouth = np.where(speaking, rng.uniform(0.3, 0.8, n), rng.uniform(0.0, 0.1, n))
    face = np.column_stack([geom, mouth, rng.uniform(0.0, 0.4, n)])  # (n, 5) in schema.FACE_FIELDS order
    face[(faces == 0) | (rng.random(n) < 0.15)] = np.nan
    scalars = {
        "scene_change": np.clip(scene_change, 0, 1),
        "visual_motion": motion,
        "saliency_x": saliency[:, 0],
        "saliency_y": saliency[:, 1],
        schema.FACE_COUNT: faces.astype(np.float64),
        **{name: face[:, i] for i, name in enumerate(schema.FACE_FIELDS)},
    }
    # CLIP: refreshed at each scene start and every 10-14 samples, held in between
    refresh = np.zeros(n, bool)
    refresh[np.cumsum(rng.integers(10, 15, n // 10 + 1))[: n // 10 + 1].clip(max=n - 1)] = True
    refresh[first[first < n]] = True
    refresh[0] = True
    hold = np.cumsum(refresh) - 1  # (n,) hold index per row
    hold_scene = scene[refresh]
    vecs = unit(c.scene_vec[hold_scene] + 0.12 * unit(rng.standard_normal((len(hold_scene), schema.CLIP_DIM))))
    vecs *= rng.uniform(6.0, 14.0, (len(hold_scene), 1))  # CLIP image embeddings are not unit length
    return scalars, hold, vecs


def write_feature_files(
    files_dir: Path, recording: Recording, rng: np.random.Generator, faults: list[str], frng: np.random.Generator
) -> list[dict[str, Any]]:
    """Write the recording's two feature CSVs with its faults; return the faults' details.

    ``rng`` samples the content (the recording stream, where it stands after the editor's
    draws), ``frng`` draws the faults, so the clean samples do not depend on them.
    """
    vid = recording.video_id
    hits = assign_faults(faults, frng)
    details: list[dict[str, Any]] = [{"kind": f"no_{m}_file", "video_id": vid, "file": m} for m in hits.missing]
    # both tables are drawn even when a file is missing, so the rng stream is the same
    irregular = {m: "irregular_times" in hits.rows.get(m, ()) for m in schema.FEATURE_MODALITIES}
    ta = _audio_times(rng, recording.horizon, irregular["audio"])
    audio = {schema.TIME: ta, **audio_columns(recording.content, ta, rng)}
    tv = _visual_times(rng, recording.horizon, irregular["visual"])
    scalars, hold, vecs = visual_columns(recording.content, tv, rng)
    tables = {"audio": audio, "visual": {schema.TIME: tv, **scalars, "_hold": hold}}
    for modality, row_faults in hits.rows.items():
        table = tables[modality]
        plan, found = plan_rows(
            table[schema.TIME], row_faults, frng, recording.start_time, recording.end_time, FAULTY_COLUMNS[modality]
        )
        details += [{**d, "video_id": vid, "file": modality} for d in found]
        rows = plan.apply(table)
        if modality == "audio":
            write_audio_csv(files_dir / schema.audio_file_name(vid), rows)
        else:
            rows_hold = rows.pop("_hold")
            write_visual_csv(files_dir / schema.visual_file_name(vid), rows, rows_hold, vecs)
    return details
