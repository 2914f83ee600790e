"""Reading: a timeline file through its format into clip spans, then sampled to frames."""
from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import opentimelineio as otio

from trackfusion import schema
from trackfusion.io.timeline import fcp7
from trackfusion.io.timeline.assets import AssetRules, candidate_names
from trackfusion.io.timeline.formats import format_for
from trackfusion.io.timeline.records import (
    CLIP_PARAMS, DEFAULTS, METADATA_KEY, ClipSpan, ImportTally, ImportedTimeline, TimelineError, TimelineFormat,
    number,
)
from trackfusion.io.timeline.recording_time import RecordingClip, clip_timing, transition_handles
from trackfusion.io.timeline.sampling import TimelineClips, sample
from trackfusion.params import TimelineParams

log = logging.getLogger(__name__)

_DEFAULT = TimelineParams()


def _read(path: Path, fmt: TimelineFormat, edl_rate: float) -> tuple[otio.schema.Timeline, int, Counter]:
    """The file's timeline (the first, if it holds several), how many others it holds,
    and what was skipped before the adapter saw it."""
    if not path.is_file():
        raise TimelineError(f"{path}: timeline file not found")
    try:
        read = fmt.read(path, edl_rate)
    except TimelineError:
        raise
    except Exception as exc:  # adapters raise anything from ParseError to KeyError on bad input
        if "overlapping" in str(exc).lower():
            raise TimelineError(f"{path}: overlapping clips on one track ({exc})") from exc
        explained = fmt.explain_error(path, exc, edl_rate)
        if explained is not None:
            raise explained from exc
        raise TimelineError(f"{path}: not a readable {fmt.adapter} timeline ({type(exc).__name__}: {exc})") from exc
    obj = read.obj
    if isinstance(obj, otio.schema.Timeline):
        timelines = [obj]
    else:
        timelines = list(obj.find_children(descended_from_type=otio.schema.Timeline)) if hasattr(obj, "find_children") else []
    if not timelines:
        raise TimelineError(f"{path}: holds no timeline (found a {type(obj).__name__})")
    if len(timelines) > 1:
        log.warning("%s: %d timelines in the file; importing the first, '%s'", path, len(timelines), timelines[0].name)
    read.fix(timelines[0])
    return timelines[0], len(timelines) - 1, read.skipped


class _ClipReader:
    """Walks one OTIO timeline's tracks into clip spans; every loss lands in ``tally``."""

    def __init__(self, path: Path, fmt: TimelineFormat, assets: AssetRules, tally: ImportTally):
        self.path, self.fmt, self.assets, self.tally = path, fmt, assets, tally

    def params_of(self, item: otio.core.Item, own: Mapping | None) -> dict[str, float]:
        """The clip's parameters. A default is counted as ``params_no_filter`` where the
        clip has no filter that could carry the value (the editor never added one, so the
        default is what the editor shows) and as ``params_defaulted`` where the value was
        lost: a filter without it, or a format that carries no parameters (EDL)."""
        found: dict[str, float] = {}
        filters: set[str] = set()
        if own is not None:
            filters.update(("motion", "crop"))  # our own export always writes every parameter
            for name in CLIP_PARAMS:
                if name in own:
                    value = number(own[name])
                    if value is None:
                        self.tally.unreadable[name] += 1
                    else:
                        found[name] = value
        size = fcp7.media_frame_size(item)
        for effect in getattr(item, "effects", []):
            kind = fcp7.read_filter(effect, found, own is None, size, self.tally)
            if kind is not None:
                filters.add(kind)
        for name in CLIP_PARAMS:
            if name not in found:
                never_added = self.fmt.carries_params and fcp7.FILTER_OF[name] not in filters
                (self.tally.no_filter if never_added else self.tally.defaulted)[name] += 1
                found[name] = DEFAULTS[name]
        return found

    def read(self, tl: otio.schema.Timeline) -> TimelineClips:
        counts = self.tally.counts
        stack = tl.tracks
        tracks = [t for t in stack if isinstance(t, otio.schema.Track)]
        video = [t for t in tracks if t.kind == otio.schema.TrackKind.Video]
        counts["audio_tracks_ignored"] = len(tracks) - len(video)
        if not video:
            raise TimelineError(f"{self.path}: the timeline has no video tracks")
        in_slots, dropped = video[: schema.NUM_TRACKS], video[schema.NUM_TRACKS:]
        counts["video_tracks"] = len(video)
        counts["tracks_dropped"] = len(dropped)
        counts["clips_dropped"] = sum(
            1 for t in dropped for c in t if isinstance(c, otio.core.Item) and not isinstance(c, otio.schema.Gap))
        if dropped:
            log.warning("%s: %d video tracks beyond the %d slots dropped (%d clips)", self.path, len(dropped),
                        schema.NUM_TRACKS, counts["clips_dropped"])

        spans: list[ClipSpan] = []
        main_class_names: list[str] = []
        origin, extent = math.inf, -math.inf  # of every item, gaps included: leading/trailing gaps are frames too
        for slot, track in enumerate(in_slots):
            if not track.enabled:
                counts["disabled_tracks"] += 1
            handles = transition_handles(track)
            for i, item in enumerate(track):
                if isinstance(item, otio.schema.Transition):
                    counts["transitions_ignored"] += 1  # clips keep their cut points
                    continue
                rng = track.transformed_time_range(track.range_of_child_at_index(i), stack)
                start = rng.start_time.to_seconds()
                origin, extent = min(origin, start), max(extent, start + rng.duration.to_seconds())
                if isinstance(item, otio.schema.Gap):
                    counts["gaps"] += 1
                    continue
                if not isinstance(item, otio.schema.Clip):
                    counts["nested_compositions"] += 1  # a nested sequence is taken as one clip
                if not (item.enabled and track.enabled):
                    counts["disabled_clips"] += 1
                    continue
                names = candidate_names(item)
                if self.assets.is_skipped(names):
                    counts["clips_skipped_by_pattern"] += 1  # a generator, not footage
                    continue
                counts["clips_read"] += 1
                own = item.metadata.get(METADATA_KEY)
                asset = self.assets.asset_of(item, names, own)
                params = self.params_of(item, own)
                values = np.array([1.0, asset] + [params[p] for p in CLIP_PARAMS], dtype=np.float32)
                if asset == self.assets.main_asset:
                    main_class_names.append(names[0] if names else "?")
                spans.append(ClipSpan(slot, start, start + rng.duration.to_seconds(), values,
                                      self.assets.shows_recording(names, asset), clip_timing(item, handles.get(i)),
                                      names[0] if names else ""))
        if not spans:
            raise TimelineError(f"{self.path}: the video tracks hold no clips (only gaps or empty tracks)")
        fallback = self._fall_back_to_main_class(spans, main_class_names)
        if fallback is not None:
            spans = [replace(s, is_main=s.values[1] == self.assets.main_asset) for s in spans]
        audio_mains = self._main_audio(stack, tracks)
        sources = [s.timing.source_start for s in spans if s.is_main and s.timing is not None]
        source_origin = self.fmt.source_origin(self.path, sources + [c.timing.source_start for c in audio_mains])
        if source_origin:
            spans = [s if s.timing is None else replace(s, timing=s.timing.shifted(-source_origin)) for s in spans]
            audio_mains = [replace(c, timing=c.timing.shifted(-source_origin)) for c in audio_mains]
        recording = [RecordingClip(s.start - origin, s.end - origin, s.timing, True)
                     for s in spans if s.is_main and s.timing is not None]
        recording += [replace(c, start=c.start - origin, end=c.end - origin) for c in audio_mains]
        return TimelineClips(spans=[replace(s, start=s.start - origin, end=s.end - origin) for s in spans],
                             recording=recording, length=extent - origin,
                             tracks_used=len(in_slots), fallback=fallback or [], source_origin=source_origin)

    def _fall_back_to_main_class(self, spans: list[ClipSpan], main_class_names: list[str]) -> list[str] | None:
        """Where the recording is named but no video clip shows it, the names of the main asset
        class's clips that stand in for it (logged and counted), else None."""
        main_media = self.assets.main_media
        if not main_media or any(s.is_main for s in spans):
            return None
        self.tally.counts["main_media_not_found"] = 1
        chosen = sorted(set(main_class_names))
        log.warning("%s: the recording '%s' is not named in the edit; took %s (clips of the main asset class %d, "
                    "found by timeline.asset_patterns) as the recording and its time base: check that the "
                    "file's media names match the video id", self.path, main_media,
                    ", ".join(f"'{n}'" for n in chosen) if chosen else "nothing", self.assets.main_asset)
        return chosen

    def _main_audio(self, stack: otio.schema.Stack, tracks: list[otio.schema.Track]) -> list[RecordingClip]:
        """The recording's clips on enabled audio tracks: its sound plays where a cutaway or a
        title covers its picture, and is the time base of an edit that never shows it."""
        found = []
        for track in tracks:
            if track.kind != otio.schema.TrackKind.Audio or not track.enabled:
                continue
            handles = transition_handles(track)
            for i, item in enumerate(track):
                if not (isinstance(item, otio.schema.Clip) and item.enabled):
                    continue
                timing = clip_timing(item, handles.get(i)) if self.assets.names_recording(candidate_names(item)) else None
                if timing is not None:
                    rng = track.transformed_time_range(track.range_of_child_at_index(i), stack)
                    start = rng.start_time.to_seconds()
                    found.append(RecordingClip(start, start + rng.duration.to_seconds(), timing, False))
        return found


def _clips(path: Path, asset_patterns: Mapping[str, int], main_media: str | None, main_asset: int,
           unmatched_asset: int, edl_rate: float, skip_patterns: Sequence[str],
           ) -> tuple[TimelineFormat, otio.schema.Timeline, int, TimelineClips, ImportTally]:  # fmt: skip
    for key, asset in [("main_asset", main_asset), ("unmatched_asset", unmatched_asset), *asset_patterns.items()]:
        if not (isinstance(asset, int) and 0 <= asset < schema.NUM_ASSET_CLASSES):
            raise ValueError(f"asset class for {key!r} must be an int in 0..{schema.NUM_ASSET_CLASSES - 1}, got {asset!r}")
    fmt = format_for(path)
    tl, others, skipped = _read(path, fmt, edl_rate)
    tally = ImportTally()
    tally.counts.update(skipped)
    assets = AssetRules(path, asset_patterns, skip_patterns, main_media, main_asset, unmatched_asset, tally)
    return fmt, tl, others, _ClipReader(path, fmt, assets, tally).read(tl), tally


def read_clips(path: str | Path, main_media: str | None = None, timeline: TimelineParams = _DEFAULT) -> TimelineClips:
    """The clips of an editor's timeline on its own time (s from its earliest item), as every format reads
    them: what a renderer plays in edit order, where :func:`import_timeline` samples the recording's frames."""
    return _clips(Path(path), timeline.asset_patterns, main_media, timeline.main_asset, timeline.unmatched_asset,
                  timeline.edl_rate, timeline.skip_patterns)[3]


def import_timeline(
    path: str | Path,
    fps: float = schema.FPS,
    asset_patterns: Mapping[str, int] | None = None,
    main_media: str | None = None,
    duration_s: float | None = None,
    *,
    main_asset: int = _DEFAULT.main_asset,
    unmatched_asset: int = _DEFAULT.unmatched_asset,
    edl_rate: float = _DEFAULT.edl_rate,
    skip_patterns: Sequence[str] | None = None,
) -> ImportedTimeline:
    """Read an editor's timeline into track frames ``(T, 180)`` sampled at ``fps`` on the
    recording's time, and ``kept`` (T,): which of those frames the edit plays (see the package
    docstring for every mapping and default).

    ``main_media`` is the recording's name (ingest passes the video id): its clips are
    class ``main_asset`` and carry the timeline-to-recording time map. Defaults are
    ``TimelineParams()``'s. Raises TimelineError naming the file.
    """
    path = Path(path)
    asset_patterns = _DEFAULT.asset_patterns if asset_patterns is None else asset_patterns
    skip_patterns = _DEFAULT.skip_patterns if skip_patterns is None else skip_patterns
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    fmt, tl, others, clips, tally = _clips(path, asset_patterns, main_media, main_asset, unmatched_asset, edl_rate,
                                           skip_patterns)
    imported = sample(path, tl, clips, float(fps), duration_s, tally)
    imported.report["adapter"] = fmt.adapter
    imported.report["other_timelines_ignored"] = others
    r = imported.report
    log.info("%s: %d frames from %d clips on %d tracks (time base %s, start %.2f s); %d unknown media, "
             "%d transitions ignored", path, r["frames"], r.get("clips_read", 0), r["tracks_used"], r["time_base"],
             r["start_time"], r.get("unknown_media", 0), r.get("transitions_ignored", 0))
    return imported
