"""Writing: track frames as a timeline an editor opens, the recording's time through a TimeMap."""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import opentimelineio as otio

from trackfusion import schema
from trackfusion.atomic import atomic_path
from trackfusion.io.timeline import fcp7
from trackfusion.io.timeline.assets import default_media_name
from trackfusion.io.timeline.formats import format_for
from trackfusion.io.timeline.records import (
    CLIP_PARAMS, FORMAT_VERSION, FRAME_HEIGHT, FRAME_WIDTH, METADATA_KEY, TimelineError, editing_rate,
)
from trackfusion.timemap import Segment, TimeMap

log = logging.getLogger(__name__)

#: what an editor accepts for each clip parameter (file units): a clip may sit up to one
#: frame beyond each edge; scale and crops are percentages
VALID_RANGES: dict[str, tuple[float, float]] = {
    "scale": (0.0, 1000.0), "x": (-FRAME_WIDTH, 2.0 * FRAME_WIDTH), "y": (-FRAME_HEIGHT, 2.0 * FRAME_HEIGHT),
    "crop_l": (0.0, 100.0), "crop_r": (0.0, 100.0), "crop_t": (0.0, 100.0), "crop_b": (0.0, 100.0),
}


def clamp_params(frames: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """A copy of `frames` (T, 180) with the parameters of active track-frames clamped into
    ``VALID_RANGES``, and how many values each parameter had outside it."""
    out = np.array(frames, dtype=np.float32, copy=True)
    active = out[:, schema.track_columns("active")] > 0.5  # (T, 20)
    counts = {}
    for name, (lo, hi) in VALID_RANGES.items():
        cols = schema.track_columns(name)
        values = out[:, cols]
        outside = active & ((values < lo) | (values > hi))
        counts[name] = int(outside.sum())
        out[:, cols] = np.where(active, np.clip(values, lo, hi), values)
    return out, counts


def _runs(frames: np.ndarray, slot: int, tolerance: float | np.ndarray) -> list[tuple[int, int, np.ndarray | None]]:
    """(start, end, values (9,) or None for a gap) runs of one slot; a run ends when
    active or asset change, or a parameter leaves the run's first value by > tolerance
    (a number, or (180,) per column in the frames' units)."""
    P = schema.NUM_TRACK_PARAMS
    block = frames[:, slot * P:(slot + 1) * P]  # (T, 9)
    tol = np.asarray(tolerance, dtype=np.float64)
    tolerance = tol[slot * P + 2:(slot + 1) * P] if tol.ndim == 1 else tol  # (7,) or a scalar
    active = block[:, 0] > 0.5
    asset = np.rint(block[:, 1])
    runs: list[tuple[int, int, np.ndarray | None]] = []
    t, T = 0, len(block)
    while t < T:
        u = t + 1
        if not active[t]:
            while u < T and not active[u]:
                u += 1
            runs.append((t, u, None))
        else:
            first = block[t, 2:]
            while u < T and active[u] and asset[u] == asset[t] and np.all(np.abs(block[u, 2:] - first) <= tolerance):
                u += 1
            values = block[t:u].mean(axis=0) if np.any(tolerance > 0) else block[t].copy()
            values[0], values[1] = 1.0, asset[t]
            runs.append((t, u, values))
        t = u
    return runs


def _timecode_rate(fps: float, path: Path) -> float:
    for rate in (24, 25, 30, 48, 50, 60, 120):
        if otio.opentime.RationalTime.is_valid_timecode_rate(rate) and (rate / fps).is_integer():
            return float(rate)
    raise TimelineError(f"{path}: no SMPTE timecode rate is a whole multiple of {fps} fps; write .otio instead")


def export_timeline(
    frames: np.ndarray,
    path: str | Path,
    fps: float = schema.FPS,
    name: str = "trackfusion",
    start_time: float = 0.0,
    media_names: Mapping[int, str] | None = None,
    *,
    main_asset: int = 0,
    param_tolerance: float | np.ndarray = 0.0,
    rate: float | None = None,
    recording_url: str | None = None,
    kept: np.ndarray | None = None,
) -> dict[str, Any]:
    """Write track frames ``(T, 180)`` as a timeline an editor opens (format by extension), atomically.

    Each slot up to the highest ever-active one becomes a video track (never-active
    slots below it stay as empty tracks, so track order keeps slot numbers in every
    format). Runs of frames with equal (active, asset, parameters) become clips, with
    gaps where inactive; ``param_tolerance`` > 0 (in the frames' units, one number or
    one per column) lets a run absorb parameter jitter (a model's output) and carry its
    mean. Parameters outside what an editor accepts (``VALID_RANGES``) are clamped into
    it and counted (``values_clamped``). Parameters go to ``metadata["trackfusion"]``
    and, for ``.otio`` and ``.xml``, into FCP Basic Motion / Crop filters too (so
    ``otioconvert`` to XML keeps them); an EDL carries one video track and no parameters.

    The recording (``media_names[main_asset]``, its file ``recording_url`` when known)
    is the main-asset clips' media, with its source ranges on recording time, and its
    sound runs under the whole edit on an audio track (not in an EDL): an editor hears
    it, and a re-import finds the time base even where no video clip shows it. Other
    assets are named ``media_names[k]`` or ``trackfusion_asset<k>_<label>``. The file is
    written at ``rate`` (default: the first SMPTE timecode rate that is a whole multiple
    of fps, 30 for 10 fps), which editors and the FCP / EDL converters accept, with a
    1920 x 1080 sequence format. Returns a report.

    ``kept`` (T,) marks the frames of the recording the edit plays (``None`` or all ones: all,
    the file is as without it). Frames where it is 0 are dropped: the kept runs go back to
    back in recording order, each one clip of the recording with its own source range and its
    sound cut with it, so an editor sees jump cuts as jump cuts (``report["jump_cuts"]``).
    """
    path = Path(path)
    fmt = format_for(path, write=True)
    frames, clamped = clamp_params(_checked_frames(frames))
    T = len(frames)
    runs = _kept_runs(kept, T, path)  # None: every frame plays
    timemap = TimeMap(fps, start_time)  # the frames play the recording uncut from start_time ...
    if runs is not None:  # ... or its kept runs back to back: one segment each
        timemap = jump_cut_map(fps, start_time, runs)
        frames = frames[np.concatenate([np.arange(a, b) for a, b in runs])]
    names = {a: default_media_name(a) for a in range(schema.NUM_ASSET_CLASSES)}
    names.update(media_names or {})
    ever = (frames[:, schema.track_columns("active")] > 0.5).any(axis=0)  # (20,)
    n_tracks = int(np.flatnonzero(ever).max()) + 1 if ever.any() else 1
    fmt.check_track_count(path, n_tracks)
    rate = _timecode_rate(fps, path) if rate is None else float(editing_rate(float(rate)) if rate > 0 else rate)
    multiple = (rate / fps).is_integer() or fmt.any_rate  # our writers round every edge to the file's frames
    if not (rate > 0 and otio.opentime.RationalTime.is_valid_timecode_rate(rate) and multiple):
        raise TimelineError(f"{path}: cannot write at {rate:g} fps: an editing rate must be a SMPTE timecode rate "
                            f"(24, 25, 30, 50, 60 ...) and a whole multiple of the frames' {fps:g} fps (.mlt and "
                            ".fcpxml take any rate, 29.97 too)")
    media = _Media(names, main_asset, recording_url, rate, rate / fps, timemap, T)
    tl = otio.schema.Timeline(name=name)
    tl.metadata[METADATA_KEY] = {"version": FORMAT_VERSION, "fps": float(fps), "start_time": float(start_time), "frames": T}
    cuts: list[int] = []
    if runs is not None:
        cuts = list(np.cumsum([b - a for a, b in runs])[:-1])  # edit frames where a jump cut starts a clip
        tl.metadata[METADATA_KEY].update({"jump_cuts": len(runs) - 1, "edit_frames": int(len(frames))})
    tl.metadata["fcp_xml"] = {"media": {"video": {"format": fcp7.frame_format(FRAME_WIDTH, FRAME_HEIGHT, rate)}}}
    counts: Counter = Counter()
    for slot in range(n_tracks):
        counts["empty_tracks"] += int(not ever[slot])
        tl.tracks.append(_video_track(frames, slot, param_tolerance, media, fmt.carries_params, counts, cuts))
    if fmt.writes_sound:  # the recording's sound under the whole edit, cut with its picture
        sound = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
        for a, b in runs or [(0, T)]:
            source = otio.opentime.TimeRange(media.rt(media.timemap.start_frame + a), media.rt(b - a))
            sound.append(otio.schema.Clip(name=media.recording, media_reference=media.reference(main_asset),
                                          source_range=source))
        tl.tracks.append(sound)
    with atomic_path(path) as tmp:
        try:
            if fmt.write is not None:
                fmt.write(tl, tmp)
            else:
                otio.adapters.write_to_file(tl, str(tmp), adapter_name=fmt.adapter)
        except TimelineError:
            raise
        except Exception as exc:
            raise TimelineError(f"{path}: {fmt.adapter} cannot write this timeline ({type(exc).__name__}: {exc})") from exc
    report = {"file": str(path), "adapter": fmt.adapter, "frames": T, "fps": float(fps), "timeline_rate": float(rate),
              "start_time": float(start_time), "recording": media.recording, "audio_tracks": int(fmt.writes_sound),
              "tracks": n_tracks, "clips": counts["clips"], "gaps": counts["gaps"], "empty_tracks": counts["empty_tracks"],
              "params_carried": fmt.params_carried, "values_clamped": clamped}
    if runs is not None:
        report.update({"jump_cuts": len(runs) - 1, "edit_frames": int(len(frames))})
    log.info("%s: wrote %d clips on %d tracks (%d frames at %g fps, parameters as %s)", path, report["clips"],
             n_tracks, T, rate, fmt.params_carried)
    return report


def _checked_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 2 or frames.shape[1] != schema.TRACK_WIDTH:
        raise ValueError(f"frames must have shape (T, {schema.TRACK_WIDTH}), got {frames.shape}")
    if not np.isfinite(frames).all():
        raise ValueError(f"frames hold non-finite values (first at row {int(np.argwhere(~np.isfinite(frames))[0][0])})")
    return frames


def jump_cut_map(fps: float, start_time: float, runs: list[tuple[int, int]]) -> TimeMap:
    """The edit of kept runs ``[a, b)`` (frames of the grid at ``start_time``) played back to back:
    the map import reads back from the file's clips."""
    segments, t = [], 0
    for a, b in runs:
        segments.append(Segment(t / fps, (b - a) / fps, start_time + a / fps))
        t += b - a
    return TimeMap(fps, start_time, tuple(segments))


def _kept_runs(kept: np.ndarray | None, T: int, path: Path) -> list[tuple[int, int]] | None:
    """The ``[a, b)`` runs of kept frames, or None where every frame is kept (the uncut export)."""
    if kept is None:
        return None
    mask = np.asarray(kept)
    if mask.shape != (T,):
        raise ValueError(f"kept must have shape ({T},) like the frames, got {mask.shape}")
    mask = mask.astype(bool)
    if mask.all():
        return None
    if not mask.any():
        raise TimelineError(f"{path}: no frame is kept: an edit of nothing cannot be written")
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


@dataclass
class _Media:
    """The media an exported edit refers to, and its time: frames at fps -> the file's rate."""

    names: dict[int, str]  # asset class -> media name
    main_asset: int
    recording_url: str | None
    rate: float  # the file's frame rate
    step: float  # file frames per track frame
    timemap: TimeMap  # timeline frames -> the recording's frames
    frames: int

    @property
    def recording(self) -> str:
        return self.names[self.main_asset]

    def rt(self, frame: float) -> otio.opentime.RationalTime:
        return otio.opentime.RationalTime(frame * self.step, self.rate)

    def source_frame(self, asset: int, timeline_frame: int) -> float:
        """Where a clip starting at `timeline_frame` starts in its media: the recording's own
        time for the recording, the edit's time for other media (they carry no time of theirs)."""
        if asset != self.main_asset:
            return timeline_frame
        if self.timemap.segments:  # jump cuts: whole frames of the grid, read mid-frame (a cut is a segment end)
            start = self.timemap.start_frame
            return start + round(self.timemap.recording_frame(timeline_frame + 0.5) - 0.5 - start)
        return self.timemap.recording_frame(timeline_frame)

    def reference(self, asset: int) -> otio.schema.ExternalReference:
        media = self.names.get(asset, default_media_name(asset))
        url = self.recording_url if asset == self.main_asset and self.recording_url else media
        available = otio.opentime.TimeRange(self.rt(0), self.rt(max(self.timemap.start_frame, 0) + self.frames))
        ref = otio.schema.ExternalReference(target_url=url, available_range=available)
        ref.name = media
        if asset == self.main_asset:  # Premiere reads clip centres in the media's own frame size
            ref.metadata["fcp_xml"] = {"media": {"video": fcp7.frame_format(FRAME_WIDTH, FRAME_HEIGHT, self.rate),
                                                 "audio": {}}}
        return ref


def _split_at_cuts(runs: list[tuple[int, int, np.ndarray | None]], cuts: list[int],
                   main_asset: int) -> list[tuple[int, int, np.ndarray | None]]:
    """Runs of the recording split at the jump cuts: each kept stretch is its own clip."""
    out = []
    for t0, t1, values in runs:
        inside = [c for c in cuts if t0 < c < t1] if values is not None and int(values[1]) == main_asset else []
        for a, b in zip([t0] + inside, inside + [t1]):
            out.append((a, b, values))
    return out


def _video_track(frames: np.ndarray, slot: int, tolerance: float | np.ndarray, media: _Media, filters: bool,
                 counts: Counter, cuts: list[int] = ()) -> otio.schema.Track:  # fmt: skip
    """One slot's clips and gaps; parameters as our metadata and, with `filters`, FCP filters."""
    track = otio.schema.Track(name=f"V{slot + 1}", kind=otio.schema.TrackKind.Video)
    track.metadata[METADATA_KEY] = {"slot": slot}
    for t0, t1, values in _split_at_cuts(_runs(frames, slot, tolerance), list(cuts), media.main_asset):
        duration = media.rt(t1 - t0)
        if values is None:
            track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(media.rt(0), duration)))
            counts["gaps"] += 1
            continue
        asset = int(values[1])
        params = {p: float(v) for p, v in zip(CLIP_PARAMS, values[2:])}
        ref = media.reference(asset)
        clip = otio.schema.Clip(name=ref.name, media_reference=ref,
                                source_range=otio.opentime.TimeRange(media.rt(media.source_frame(asset, t0)), duration))
        clip.metadata[METADATA_KEY] = {"asset_id": asset, **params}
        if filters:
            clip.metadata["fcp_xml"] = {"filter": fcp7.filters(params)}
        track.append(clip)
        counts["clips"] += 1
    return track
