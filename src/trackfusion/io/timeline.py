"""Editor timelines <-> track frames, through OpenTimelineIO and its packaged adapters.

Formats, chosen by extension: ``.otio`` (native JSON), ``.xml`` (FCP 7 / Premiere XML,
adapter ``fcp_xml``), ``.edl`` (CMX 3600, adapter ``cmx_3600``).

Track layout (SPEC section 3): video tracks fill the 20 slots in file order (FCP's V1
is slot 0). A frame where a clip covers the sample time is active; the clip's asset
class comes from, in order: trackfusion's own clip metadata (``metadata["trackfusion"]
["asset_id"]``, written by :func:`export_timeline`), a media name equal to the
recording's id (``main_media``), trackfusion's export naming (``trackfusion_asset<k>``),
``asset_patterns`` (case-insensitive globs, first match wins) and last
``unmatched_asset`` (counted). Inactive track-frames are all zeros.

Parameters, per clip (constant over the clip):

- ``scale``: percent, 100 = unscaled.
- ``x``, ``y``: the clip centre in pixels of a 1920 x 1080 output frame, (0, 0) top
  left, as the synthetic corpus writes them; default the frame centre (960, 540). FCP 7
  Basic Motion ``center`` (``horiz``, ``vert``) is the offset from the frame centre in
  fractions of the frame (edges at +-0.5, +vert down), so ``x = 960 + 1920 * horiz``
  and ``y = 540 + 1080 * vert``.
- ``crop_l``, ``crop_r``, ``crop_t``, ``crop_b``: percent of the clip, as in the FCP 7
  Crop filter.

They are read from ``metadata["trackfusion"]`` (.otio written by us), else from the FCP
"Basic Motion" (``effectid`` basic) and "Crop" (``effectid`` crop) filters, which the
fcp_xml adapter exposes as ``clip.effects`` with the filter's XML as a dict under
``effect.metadata["fcp_xml"]``. A value that is absent gets its default (scale 100,
x 960, y 540, crops 0) and is counted in ``report["params_defaulted"]``; a keyframed or
non-numeric value is counted in ``report["params_unreadable"]`` and defaulted too,
never interpolated or guessed. An EDL carries no parameters at all.

Time: frames are sampled at ``fps`` on the *source recording's* time, so frame ``i``
is recording time ``start_time + i / fps`` (the contract of ``sequences.npz``). The map
from timeline time to recording time is, in order:

1. ``metadata["trackfusion"]["start_time"]`` on the timeline (our own export): timeline
   0 is recording ``start_time``; sampling keeps that grid, so a round trip is exact.
2. the main recording's first clip (media named ``main_media``, else the first clip of
   class ``main_asset``): recording time = timeline time + (clip source start - clip
   timeline start), where the source start is the clip's ``source_range`` start minus
   its media's ``available_range`` start (the file's own timecode) when the format
   gives one. Frames then sit on the recording's 1/fps grid, the grid of the audio
   table. Later main clips with another offset (a jump cut inside the recording) cannot
   be on one uniform grid: they are counted in ``main_clips_off_grid`` and logged.
3. otherwise timeline time is recording time (``report["time_base"] == "timeline"``).

Timeline time 0 is the earliest item of any video track (for an EDL, the earliest
record-in, so a 01:00:00:00 programme start costs nothing). Transitions keep the cut
points OTIO gives the clips around them. Timeline samples before recording time 0 are
dropped (counted). ``duration_s`` fixes the output to recording times
``[0, duration_s)``, padding with inactive frames.

Export writes ``.xml`` and ``.edl`` at a SMPTE timecode rate that is a whole multiple
of fps (30 for 10 fps: timecode has no 10 fps), ``.otio`` at fps itself. The fcp_xml
adapter writes no ``clip.effects``; it writes ``clip.metadata["fcp_xml"]`` as XML, so
the Basic Motion and Crop filters are put there. It drops trailing gaps, so trailing
inactive frames do not survive an XML round trip.
"""
from __future__ import annotations

import fnmatch
import logging
import math
import os
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import opentimelineio as otio

from trackfusion import schema
from trackfusion.atomic import atomic_path

log = logging.getLogger(__name__)

#: extension -> adapter, richest format first: when one video has several, the first one here is imported
ADAPTERS: dict[str, str] = {".otio": "otio_json", ".xml": "fcp_xml", ".edl": "cmx_3600"}
METADATA_KEY = "trackfusion"
FORMAT_VERSION = 1
#: parameters a clip carries (everything after ``active``), in track layout order
CLIP_PARAMS: tuple[str, ...] = schema.TRACK_PARAMS[2:]
#: output frame that x, y are pixels of (the synthetic corpus's; TODO move to schema beside the track layout)
FRAME_WIDTH, FRAME_HEIGHT = schema.FRAME_WIDTH, schema.FRAME_HEIGHT
DEFAULTS: dict[str, float] = {
    "scale": 100.0, "x": FRAME_WIDTH / 2, "y": FRAME_HEIGHT / 2, "crop_l": 0.0, "crop_r": 0.0, "crop_t": 0.0, "crop_b": 0.0,
}
#: FCP 7 Crop filter parameter ids -> our crop parameters
FCP_CROP = {"left": "crop_l", "right": "crop_r", "top": "crop_t", "bottom": "crop_b"}
_EXPORT_NAME_RE = re.compile(r"^trackfusion_asset(\d+)(?:_|\.|$)", re.IGNORECASE)
_EPS = 1e-6  # in frames: absorbs float error when a clip edge falls on a sample time


MAX_HOURS = 24  # an edit longer than this is refused as broken (10 fps x 180 floats: 0.6 GB per day)


class TimelineError(ValueError):
    """A timeline file cannot be imported or exported; the message names the file."""


@dataclass
class ImportedTimeline:
    frames: np.ndarray  # (T, 180) float32, schema track layout
    start_time: float  # recording time (s) of frame 0
    fps: float
    report: dict[str, Any] = field(default_factory=dict)


def default_media_name(asset: int) -> str:
    label = schema.ASSET_CLASSES[asset] if asset < len(schema.ASSET_CLASSES) else f"class{asset}"
    return f"trackfusion_asset{asset}_{label}"


# --------------------------------------------------------------------------- reading


def _adapter_for(path: Path) -> str:
    try:
        return ADAPTERS[path.suffix.lower()]
    except KeyError:
        raise TimelineError(
            f"{path}: unknown timeline extension '{path.suffix}'; expected one of {', '.join(ADAPTERS)}"
        ) from None


def _read(path: Path, adapter: str, edl_rate: float) -> tuple[otio.schema.Timeline, int, Counter]:
    """The file's timeline (the first, if it holds several), how many others it holds,
    and what was skipped before the adapter saw it."""
    if not path.is_file():
        raise TimelineError(f"{path}: timeline file not found")
    skipped: Counter = Counter()
    try:
        if adapter == "fcp_xml":
            root = _parse_xml(path)
            skipped = _drop_unsupported_fcp_items(path, root)
            _check_fcp_overlaps(path, root)
            obj = otio.adapters.read_from_string(ET.tostring(root, encoding="unicode"), adapter_name=adapter)
        else:
            kwargs = {"rate": edl_rate} if adapter == "cmx_3600" else {}
            obj = otio.adapters.read_from_file(str(path), adapter_name=adapter, **kwargs)
    except TimelineError:
        raise
    except Exception as exc:  # adapters raise anything from ParseError to KeyError on bad input
        if "overlapping" in str(exc).lower():
            raise TimelineError(f"{path}: overlapping clips on one track ({exc})") from exc
        if adapter == "cmx_3600" and "duration" in str(exc).lower():
            raise TimelineError(
                f"{path}: not a readable EDL at {edl_rate:g} fps ({type(exc).__name__}: {exc}); an EDL does not "
                "carry its frame rate: set timeline.edl_rate in params.yaml to your editor's (24, 25, 30 ...)"
            ) from exc
        raise TimelineError(f"{path}: not a readable {adapter} timeline ({type(exc).__name__}: {exc})") from exc
    if isinstance(obj, otio.schema.Timeline):
        timelines = [obj]
    else:
        timelines = list(obj.find_children(descended_from_type=otio.schema.Timeline)) if hasattr(obj, "find_children") else []
    if not timelines:
        raise TimelineError(f"{path}: holds no timeline (found a {type(obj).__name__})")
    if len(timelines) > 1:
        log.warning("%s: %d timelines in the file; importing the first, '%s'", path, len(timelines), timelines[0].name)
    if adapter == "fcp_xml":
        _apply_fcp_enabled(path, root, timelines[0])
    return timelines[0], len(timelines) - 1, skipped


def _parse_xml(path: Path) -> ET.Element:
    """The XML tree, from bytes: a UTF-8 byte-order mark (Premiere on Windows writes one) is fine."""
    try:
        return ET.fromstring(path.read_bytes())
    except ET.ParseError as exc:
        raise TimelineError(f"{path}: not a readable fcp_xml timeline (not well-formed XML: {exc})") from exc


def _is_false(element: ET.Element) -> bool:
    return (element.findtext("enabled") or "TRUE").strip().upper() == "FALSE"


def _drop_unsupported_fcp_items(path: Path, root: ET.Element) -> Counter:
    """Remove the clip items of sequence tracks that the fcp_xml adapter cannot read.

    A multicam clip (``<multiclip>``) or a clip item with neither a file nor a nested
    sequence makes the adapter reject the whole edit; without it the rest imports.
    Each is counted and logged. A file defined inside a removed item and referenced by
    id later keeps its definition (moved to the first later reference).
    """
    skipped: Counter = Counter()
    for track in root.iter("track"):
        for item in [e for e in track if e.tag == "clipitem"]:
            if item.find("file") is not None or item.find("sequence") is not None:
                continue
            kind = "multicam" if item.find("multiclip") is not None else "unsupported"
            skipped[f"{kind}_clips_skipped"] += 1
            log.warning("%s: clip '%s' is a %s clip item the importer cannot read; skipped (the rest of the edit "
                        "is kept)", path, item.findtext("name") or item.get("id") or "?", kind)
            track.remove(item)
            for definition in item.iter("file"):
                fid = definition.get("id")
                ref = next((f for f in root.iter("file") if fid and f.get("id") == fid), None)
                if ref is not None and len(ref) == 0 and len(definition):
                    ref.extend(list(definition))
    return skipped


def _apply_fcp_enabled(path: Path, root: ET.Element, tl: otio.schema.Timeline) -> None:
    """Carry FCP 7 / Premiere ``<enabled>FALSE</enabled>`` of clips and video tracks into `tl`.

    The fcp_xml adapter drops the flag, so a disabled clip (common in real projects)
    would import as active. XML items of a track (clip, generator and transition items)
    map in order to the OTIO track's children other than gaps; where the two do not
    line up, nothing is changed and a warning says so.
    """
    sequences = list(root.iter("sequence"))
    seq = next((q for q in sequences if (q.findtext("name") or "") == (tl.name or "")), sequences[0] if sequences else None)
    if seq is None:
        return
    video = [t for t in tl.tracks if isinstance(t, otio.schema.Track) and t.kind == otio.schema.TrackKind.Video]
    xml_tracks = seq.findall("./media/video/track")
    if len(xml_tracks) != len(video):
        log.warning("%s: %d XML video tracks against %d read; <enabled> flags not applied", path, len(xml_tracks), len(video))
        return
    for xml_track, track in zip(xml_tracks, video):
        if _is_false(xml_track):
            track.enabled = False
        items = [e for e in xml_track if e.tag in ("clipitem", "generatoritem", "transitionitem")]
        children = [c for c in track if not isinstance(c, otio.schema.Gap)]
        if len(items) != len(children):
            log.warning("%s: track %s has %d XML items against %d read; its clips' <enabled> flags not applied",
                        path, track.name, len(items), len(children))
            continue
        for item, child in zip(items, children):
            if _is_false(item) and hasattr(child, "enabled"):
                child.enabled = False


def _check_fcp_overlaps(path: Path, root: ET.Element) -> None:
    """The fcp_xml adapter silently moves a clip that starts before the previous one ends
    to after it; the <start>/<end> it reads are not kept, so look at them here."""
    for seq_no, seq in enumerate(root.iter("sequence")):
        for track_no, track in enumerate(seq.findall("./media/video/track")):
            prev_end, prev_name = None, None
            for item in track:
                if item.tag not in ("clipitem", "generatoritem"):
                    continue
                start, end = item.findtext("start"), item.findtext("end")
                name = item.findtext("name") or item.get("id") or "?"
                try:
                    start_f, end_f = int(float(start)), int(float(end))
                except (TypeError, ValueError):
                    continue  # a reference to a clip defined elsewhere; the adapter resolves it
                if start_f >= 0 and prev_end is not None and start_f < prev_end:
                    raise TimelineError(
                        f"{path}: overlapping clips on video track {track_no + 1} of sequence {seq_no + 1}: "
                        f"'{name}' starts at frame {start_f} before '{prev_name}' ends at frame {prev_end}"
                    )
                if end_f >= 0:
                    prev_end, prev_name = end_f, name


def _url_name(url: str | None) -> str | None:
    if not url:
        return None
    path = urllib.parse.unquote(urllib.parse.urlparse(url).path or url)
    name = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return name or None


def _candidate_names(item: otio.core.Item) -> list[str]:
    """Names to match against patterns, most specific first: media file, media, clip, reel."""
    names: list[str | None] = []
    ref = getattr(item, "media_reference", None)
    if ref is not None:
        names.append(_url_name(getattr(ref, "target_url", None)))
        names.append(_url_name(getattr(ref, "target_url_base", None)))
        names.append(ref.name)
        names.append(getattr(ref, "generator_kind", None))
    names.append(item.name)
    cmx = item.metadata.get("cmx_3600")
    if cmx is not None and "reel" in cmx:
        names.append(str(cmx["reel"]))
    return [n for n in dict.fromkeys(names) if n]


def _matches_media(names: Sequence[str], main_media: str | None) -> bool:
    if not main_media:
        return False
    return any(n == main_media or os.path.splitext(n)[0] == main_media for n in names)


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or hasattr(value, "items"):
        return [value]
    return list(value)


#: the FCP filter that carries each clip parameter
_FILTER_OF: dict[str, str] = {"scale": "motion", "x": "motion", "y": "motion", **{c: "crop" for c in FCP_CROP.values()}}


def _media_frame_size(item: otio.core.Item) -> tuple[float, float] | None:
    """(width, height) of the clip's media where the file gives it (FCP XML ``<file><media>
    <video><samplecharacteristics>``), else None."""
    ref = getattr(item, "media_reference", None)
    node: Any = (ref.metadata.get("fcp_xml") if ref is not None else None) or {}
    for key in ("media", "video", "samplecharacteristics"):
        node = node.get(key) if hasattr(node, "get") else None
    if not hasattr(node, "get"):
        return None
    width, height = _number(node.get("width")), _number(node.get("height"))
    return (width, height) if width and height and width > 0 and height > 0 else None


def _constant_keyframes(keyframes: Any) -> Any:
    """The value of FCP keyframes that all hold one value (a number, or a centre's dict), else None."""
    values = [k.get("value") for k in _as_list(keyframes) if hasattr(k, "get")]
    if not values or any(v is None for v in values):
        return None
    first = values[0]
    if hasattr(first, "get"):
        keys = ("horiz", "vert")
        pairs = [tuple(_number(v.get(k)) if hasattr(v, "get") else None for k in keys) for v in values]
        return dict(zip(keys, pairs[0])) if None not in pairs[0] and all(p == pairs[0] for p in pairs) else None
    numbers = [_number(v) for v in values]
    return first if numbers[0] is not None and all(n == numbers[0] for n in numbers) else None


class _Importer:
    """Walks one OTIO timeline and fills the frames; every loss lands in ``report``."""

    def __init__(self, path: Path, fps: float, patterns: Mapping[str, int], main_media: str | None,
                 main_asset: int, unmatched_asset: int, skip_patterns: Sequence[str] = (), adapter: str = "otio_json"):
        self.path, self.fps, self.main_media = path, float(fps), main_media
        self.carries_params = adapter != "cmx_3600"  # an EDL has no parameters: every default is a loss
        self.edl = adapter == "cmx_3600"
        self.patterns = [(p.lower(), int(a)) for p, a in patterns.items()]
        self.skip = [p.lower() for p in skip_patterns]
        self.main_asset, self.unmatched_asset = main_asset, unmatched_asset
        self.counts: Counter = Counter()
        self.defaulted: Counter = Counter()
        self.no_filter: Counter = Counter()
        self.fallback: list[str] = []  # media taken as the recording when it is not named in the edit
        self.source_origin = 0.0  # EDL: the source timecode (s) that is recording time 0
        self.unreadable: Counter = Counter()
        self.ignored_effects: Counter = Counter()

    # --- one clip ------------------------------------------------------------------
    def asset_of(self, item: otio.core.Item, names: Sequence[str], own: Mapping | None) -> int:
        if own is not None and "asset_id" in own:
            asset = _number(own["asset_id"])
            if asset is not None and asset == int(asset):
                return self._in_range(int(asset), item)
            self.unreadable["asset_id"] += 1
        if _matches_media(names, self.main_media):
            return self.main_asset
        named = self._asset_named(names)
        if named is not None:
            return self._in_range(named, item)
        self.counts["unknown_media"] += 1
        log.debug("%s: clip '%s' (%s) matches no asset pattern; class %d", self.path, item.name, names, self.unmatched_asset)
        return self.unmatched_asset

    def _asset_named(self, names: Sequence[str]) -> int | None:
        """The class our export's naming (``trackfusion_asset<k>``) or the first matching asset
        pattern gives these names, else None."""
        for n in names:
            m = _EXPORT_NAME_RE.match(n)
            if m:
                return int(m.group(1))
        for pattern, asset in self.patterns:
            if any(fnmatch.fnmatchcase(n.lower(), pattern) for n in names):
                return asset
        return None

    def _in_range(self, asset: int, item: otio.core.Item) -> int:
        if 0 <= asset < schema.NUM_ASSET_CLASSES:
            return asset
        self.counts["asset_out_of_range"] += 1
        log.warning("%s: clip '%s' has asset class %d outside 0..%d; using %d", self.path, item.name, asset,
                    schema.NUM_ASSET_CLASSES - 1, schema.NUM_ASSET_CLASSES - 1)
        return schema.NUM_ASSET_CLASSES - 1

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
                    value = _number(own[name])
                    if value is None:
                        self.unreadable[name] += 1
                    else:
                        found[name] = value
        size = _media_frame_size(item)
        for effect in getattr(item, "effects", []):
            kind = self._read_effect(effect, found, from_effects=own is None, media_size=size)
            if kind is not None:
                filters.add(kind)
        for name in CLIP_PARAMS:
            if name not in found:
                never_added = self.carries_params and _FILTER_OF[name] not in filters
                (self.no_filter if never_added else self.defaulted)[name] += 1
                found[name] = DEFAULTS[name]
        return found

    def _read_effect(self, effect: otio.schema.Effect, found: dict[str, float], from_effects: bool,
                     media_size: tuple[float, float] | None = None) -> str | None:
        """Read one FCP filter into `found`; its kind ("motion", "crop") or None if not ours."""
        fcp = effect.metadata.get("fcp_xml")
        effect_id = str((fcp or {}).get("effectid") or effect.effect_name or "").lower()
        label = str(effect.name or effect.effect_name or effect_id or type(effect).__name__)
        kind = "motion" if effect_id == "basic" or label.lower() == "basic motion" else (
            "crop" if effect_id == "crop" or label.lower() == "crop" else None)
        if kind is None or fcp is None or not from_effects:
            if kind is None:
                self.ignored_effects[label] += 1
            return kind
        for param in _as_list(fcp.get("parameter")):
            if not hasattr(param, "get"):
                continue
            pid = str(param.get("parameterid") or "").lower()
            targets = {"scale": ("scale",), "center": ("x", "y")}.get(pid) if kind == "motion" else (
                (FCP_CROP[pid],) if pid in FCP_CROP else None)
            if targets is None:
                continue  # rotation, anchor, ...: not part of the track state
            value = param.get("value")
            if "keyframe" in param:
                # the track state holds one value per clip: keyframes that hold one value are that value
                value = _constant_keyframes(param.get("keyframe"))
                if value is not None:
                    self.counts["keyframed_params_constant"] += 1
            if value is None:
                for t in targets:
                    self.unreadable[t] += 1
                continue
            if pid == "center":
                # Premiere: the offset from the frame centre in units of the clip's own media frame
                # (a portrait clip or a still is not 1920 x 1080); the output frame where no size is given
                width, height = media_size or (FRAME_WIDTH, FRAME_HEIGHT)
                if media_size is not None and media_size != (FRAME_WIDTH, FRAME_HEIGHT):
                    self.counts["centres_in_media_size"] += 1
                horiz = _number(value.get("horiz")) if hasattr(value, "get") else None
                vert = _number(value.get("vert")) if hasattr(value, "get") else None
                for t, v, centre, size in (("x", horiz, FRAME_WIDTH / 2, width), ("y", vert, FRAME_HEIGHT / 2, height)):
                    if v is None:
                        self.unreadable[t] += 1
                    else:
                        found[t] = centre + size * v
            else:
                v = _number(value)
                if v is None:
                    self.unreadable[targets[0]] += 1
                else:
                    found[targets[0]] = v
        return kind

    # --- the whole timeline ----------------------------------------------------------
    def run(self, tl: otio.schema.Timeline, duration_s: float | None) -> ImportedTimeline:
        stack = tl.tracks
        tracks = [t for t in stack if isinstance(t, otio.schema.Track)]
        video = [t for t in tracks if t.kind == otio.schema.TrackKind.Video]
        self.counts["audio_tracks_ignored"] = len(tracks) - len(video)
        if not video:
            raise TimelineError(f"{self.path}: the timeline has no video tracks")
        kept, dropped = video[: schema.NUM_TRACKS], video[schema.NUM_TRACKS:]
        self.counts["video_tracks"] = len(video)
        self.counts["tracks_dropped"] = len(dropped)
        self.counts["clips_dropped"] = sum(
            1 for t in dropped for c in t if isinstance(c, otio.core.Item) and not isinstance(c, otio.schema.Gap))
        if dropped:
            log.warning("%s: %d video tracks beyond the %d slots dropped (%d clips)", self.path, len(dropped),
                        schema.NUM_TRACKS, self.counts["clips_dropped"])

        spans = []  # (slot, start_s, end_s, values (9,), is_main, source_start_s | None)
        main_class_names: list[str] = []
        origin, extent = math.inf, -math.inf  # of every item, gaps included: leading/trailing gaps are frames too
        for slot, track in enumerate(kept):
            if not track.enabled:
                self.counts["disabled_tracks"] += 1
            for i, item in enumerate(track):
                if isinstance(item, otio.schema.Transition):
                    self.counts["transitions_ignored"] += 1  # clips keep their cut points
                    continue
                rng = track.transformed_time_range(track.range_of_child_at_index(i), stack)
                start = rng.start_time.to_seconds()
                origin, extent = min(origin, start), max(extent, start + rng.duration.to_seconds())
                if isinstance(item, otio.schema.Gap):
                    self.counts["gaps"] += 1
                    continue
                if not isinstance(item, otio.schema.Clip):
                    self.counts["nested_compositions"] += 1  # a nested sequence is taken as one clip
                if not (item.enabled and track.enabled):
                    self.counts["disabled_clips"] += 1
                    continue
                names = _candidate_names(item)
                if not _matches_media(names, self.main_media) and any(
                        fnmatch.fnmatchcase(n.lower(), p) for p in self.skip for n in names):
                    self.counts["clips_skipped_by_pattern"] += 1  # a generator, not footage
                    continue
                self.counts["clips_read"] += 1
                own = item.metadata.get(METADATA_KEY)
                asset = self.asset_of(item, names, own)
                params = self.params_of(item, own)
                values = np.array([1.0, asset] + [params[p] for p in CLIP_PARAMS], dtype=np.float32)
                is_main = _matches_media(names, self.main_media) if self.main_media else asset == self.main_asset
                if asset == self.main_asset:
                    main_class_names.append(names[0] if names else "?")
                spans.append((slot, start, start + rng.duration.to_seconds(), values, is_main, self._source_start(item)))
        if not spans:
            raise TimelineError(f"{self.path}: the video tracks hold no clips (only gaps or empty tracks)")
        if self.main_media and not any(s[4] for s in spans):
            # the recording is not named in the edit: fall back to the main asset class
            spans = [s[:4] + (s[3][1] == self.main_asset,) + s[5:] for s in spans]
            self.counts["main_media_not_found"] = 1
            chosen = sorted(set(main_class_names))
            self.fallback = chosen
            log.warning("%s: the recording '%s' is not named in the edit; took %s (clips of the main asset class %d, "
                        "found by timeline.asset_patterns) as the recording and its time base: check that the "
                        "file's media names match the video id", self.path, self.main_media,
                        ", ".join(f"'{n}'" for n in chosen) if chosen else "nothing", self.main_asset)
        audio_mains = self._main_audio(stack, tracks)
        if self.edl:
            spans, audio_mains = self._edl_source_times(spans, audio_mains)
        return self._sample(tl, spans, audio_mains, origin, extent - origin, duration_s, len(kept))

    def _main_audio(self, stack: otio.schema.Stack, tracks: list[otio.schema.Track]) -> list[tuple[float, float]]:
        """(timeline start s, source start s) of the recording's clips on enabled audio tracks: the time
        base of an edit whose video tracks never show the recording (its sound still runs under it)."""
        found = []
        for track in tracks:
            if track.kind != otio.schema.TrackKind.Audio or not track.enabled:
                continue
            for i, item in enumerate(track):
                if isinstance(item, otio.schema.Clip) and item.enabled and self._names_recording(_candidate_names(item)):
                    src = self._source_start(item)
                    if src is not None:
                        rng = track.transformed_time_range(track.range_of_child_at_index(i), stack)
                        found.append((rng.start_time.to_seconds(), src))
        return found

    def _names_recording(self, names: Sequence[str]) -> bool:
        """The media is the recording: named as it, else (no name given) named as the main asset
        by our export or by the first asset pattern it matches."""
        if self.main_media:
            return _matches_media(names, self.main_media)
        return self._asset_named(names) == self.main_asset

    def _edl_source_times(self, spans: list, audio_mains: list) -> tuple[list, list]:
        """An EDL's source timecode is the recording's own timecode, not its time: recorders and
        cameras start it on a whole hour (00:00:00:00, 01:00:00:00), so the recording starts at the
        whole hour at or below its earliest source-in (reported as ``edl_source_origin_s``)."""
        sources = [s[5] for s in spans if s[4] and s[5] is not None] + [src for _, src in audio_mains]
        if not sources:
            return spans, audio_mains
        tc0 = math.floor(min(sources) / 3600.0 + 1e-9) * 3600.0
        self.source_origin = tc0
        if tc0:
            log.info("%s: EDL source timecode %02d:00:00:00 is recording time 0", self.path, int(tc0 // 3600))
        spans = [s[:5] + (None if s[5] is None else s[5] - tc0,) for s in spans]
        return spans, [(a, src - tc0) for a, src in audio_mains]

    def _source_start(self, item: otio.core.Item) -> float | None:
        if not isinstance(item, otio.schema.Clip) or item.source_range is None:
            return None
        start = item.source_range.start_time
        ref = item.media_reference
        available = getattr(ref, "available_range", None)
        if available is not None:
            start = start - available.start_time.rescaled_to(start)
        return start.to_seconds()

    def _sample(self, tl, spans, audio_mains, origin: float, end: float, duration_s: float | None,
                n_tracks: int) -> ImportedTimeline:
        fps = self.fps
        spans = [(sl, a - origin, b - origin, v, m, src) for sl, a, b, v, m, src in spans]
        own = tl.metadata.get(METADATA_KEY)
        own_start = _number(own.get("start_time")) if own is not None and hasattr(own, "get") else None
        phase = 0.0
        mains = sorted((a, src) for _, a, _, _, m, src in spans if m and src is not None)
        audio_mains = sorted((a - origin, src) for a, src in audio_mains)
        if own_start is not None:
            time_base, offset = "trackfusion_metadata", own_start
            phase = own_start - math.floor(own_start * fps + _EPS) / fps  # keep the exported grid
            if phase * fps < _EPS:
                phase = 0.0
        elif mains:
            time_base, offset = "main_clip", mains[0][1] - mains[0][0]
            off_grid = [a for a, src in mains[1:] if abs((src - a) - offset) * fps > 0.5]
            self.counts["main_clips_off_grid"] = len(off_grid)
            if off_grid:
                log.warning("%s: %d later clips of the main recording are cut from other places of it; their "
                            "frames keep the first clip's time mapping (first at timeline %.1f s)",
                            self.path, len(off_grid), off_grid[0])
        elif audio_mains:
            time_base, offset = "main_audio", audio_mains[0][1] - audio_mains[0][0]
        else:
            time_base, offset = "timeline", 0.0
        # frame j is recording time phase + j / fps, timeline time phase + j / fps - offset
        def first_j(recording_s: float) -> int:  # first j with recording time >= recording_s
            return math.ceil((recording_s - phase) * fps - _EPS)

        tl_lo, tl_hi = first_j(offset), first_j(offset + end)
        if duration_s is None:
            j_lo, j_hi = max(tl_lo, first_j(0.0)), tl_hi
        else:
            j_lo, j_hi = first_j(0.0), first_j(float(duration_s))
        if j_hi <= j_lo:
            raise TimelineError(
                f"{self.path}: no frame of the edit falls inside the recording (timeline maps to recording "
                f"{offset:.2f}..{offset + end:.2f} s, time base {time_base})"
            )
        if (j_hi - j_lo) > MAX_HOURS * 3600 * fps:  # a few KB of XML can declare years: never allocate them
            raise TimelineError(
                f"{self.path}: the edit spans {(j_hi - j_lo) / fps / 3600:,.1f} hours (timeline "
                f"{offset:.1f}..{offset + end:.1f} s); more than {MAX_HOURS} hours is taken for a broken file"
            )
        frames = np.zeros((j_hi - j_lo, schema.TRACK_WIDTH), np.float32)
        P = schema.NUM_TRACK_PARAMS
        for slot, a, b, values, _, _ in spans:
            lo, hi = first_j(offset + a), first_j(offset + b)
            if hi <= lo:
                self.counts["clips_shorter_than_a_frame"] += 1
                continue
            frames[max(lo, j_lo) - j_lo: max(min(hi, j_hi), j_lo) - j_lo, slot * P:(slot + 1) * P] = values
        self.counts["frames_outside_recording"] = (tl_hi - tl_lo) - max(0, min(tl_hi, j_hi) - max(tl_lo, j_lo))
        start_time = phase + j_lo / fps
        report = {
            "file": str(self.path),
            "time_base": time_base,
            "fps": fps,
            "frames": int(len(frames)),
            "start_time": start_time,
            "tracks_used": n_tracks,
            **{k: int(v) for k, v in sorted(self.counts.items())},
            "params_defaulted": dict(sorted(self.defaulted.items())),
            "params_no_filter": dict(sorted(self.no_filter.items())),
            **({"main_media_fallback": self.fallback} if self.fallback else {}),
            **({"edl_source_origin_s": self.source_origin} if self.edl else {}),
            "params_unreadable": dict(sorted(self.unreadable.items())),
            "effects_ignored": dict(sorted(self.ignored_effects.items())),
        }
        return ImportedTimeline(frames=frames, start_time=start_time, fps=fps, report=report)


def import_timeline(
    path: str | Path,
    fps: float = schema.FPS,
    asset_patterns: Mapping[str, int] | None = None,
    main_media: str | None = None,
    duration_s: float | None = None,
    *,
    main_asset: int = 0,
    unmatched_asset: int = 4,
    edl_rate: float = 30.0,
    skip_patterns: Sequence[str] | None = None,
) -> ImportedTimeline:
    """Read an editor's timeline into track frames ``(T, 180)`` sampled at ``fps`` on the
    recording's time (see the module docstring for every mapping and default).

    ``main_media`` is the recording's name (ingest passes the video id): its clips are
    class ``main_asset`` and carry the timeline-to-recording time map. ``asset_patterns``
    defaults to ``TimelineParams().asset_patterns``. Raises TimelineError naming the file.
    """
    path = Path(path)
    if asset_patterns is None or skip_patterns is None:
        from trackfusion.params import TimelineParams

        asset_patterns = TimelineParams().asset_patterns if asset_patterns is None else asset_patterns
        skip_patterns = TimelineParams().skip_patterns if skip_patterns is None else skip_patterns
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    for key, asset in [("main_asset", main_asset), ("unmatched_asset", unmatched_asset), *asset_patterns.items()]:
        if not (isinstance(asset, int) and 0 <= asset < schema.NUM_ASSET_CLASSES):
            raise ValueError(f"asset class for {key!r} must be an int in 0..{schema.NUM_ASSET_CLASSES - 1}, got {asset!r}")
    adapter = _adapter_for(path)
    tl, others, skipped = _read(path, adapter, edl_rate)
    importer = _Importer(path, fps, asset_patterns, main_media, main_asset, unmatched_asset, skip_patterns, adapter)
    importer.counts.update(skipped)
    imported = importer.run(tl, duration_s)
    imported.report["adapter"] = adapter
    imported.report["other_timelines_ignored"] = others
    r = imported.report
    log.info("%s: %d frames from %d clips on %d tracks (time base %s, start %.2f s); %d unknown media, "
             "%d transitions ignored", path, r["frames"], r.get("clips_read", 0), r["tracks_used"], r["time_base"],
             r["start_time"], r.get("unknown_media", 0), r.get("transitions_ignored", 0))
    return imported


# --------------------------------------------------------------------------- writing


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


def _fcp_filters(params: Mapping[str, float]) -> list[dict]:
    """FCP 7 Basic Motion and Crop filters as the fcp_xml adapter writes metadata dicts."""

    def parameter(pid: str, name: str, value: Any, lo: float, hi: float) -> dict:
        return {"parameterid": pid, "name": name, "valuemin": str(lo), "valuemax": str(hi), "value": value}

    motion = {
        "name": "Basic Motion", "effectid": "basic", "effectcategory": "motion", "effecttype": "motion",
        "mediatype": "video",
        "parameter": [
            parameter("scale", "Scale", repr(float(params["scale"])), 0, 1000),
            {"parameterid": "center", "name": "Center",
             "value": {"horiz": repr((params["x"] - FRAME_WIDTH / 2) / FRAME_WIDTH),
                       "vert": repr((params["y"] - FRAME_HEIGHT / 2) / FRAME_HEIGHT)}},
        ],
    }
    crop = {
        "name": "Crop", "effectid": "crop", "effectcategory": "motion", "effecttype": "motion", "mediatype": "video",
        "parameter": [parameter(pid, pid.capitalize(), repr(float(params[ours])), 0, 100) for pid, ours in FCP_CROP.items()],
    }
    return [{"enabled": "TRUE", "effect": motion}, {"enabled": "TRUE", "effect": crop}]


def _fcp_format(width: int, height: int, rate: float) -> dict:
    """An FCP 7 ``<samplecharacteristics>`` dict (a sequence's format, a file's frame size)."""
    return {"samplecharacteristics": {
        "rate": {"timebase": str(int(round(rate))), "ntsc": "FALSE"}, "width": str(width), "height": str(height),
        "anamorphic": "FALSE", "pixelaspectratio": "square", "fielddominance": "none"}}


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
    """
    path = Path(path)
    adapter = _adapter_for(path)
    frames, clamped = clamp_params(_checked_frames(frames))
    T = len(frames)
    names = {a: default_media_name(a) for a in range(schema.NUM_ASSET_CLASSES)}
    names.update(media_names or {})
    ever = (frames[:, schema.track_columns("active")] > 0.5).any(axis=0)  # (20,)
    n_tracks = int(np.flatnonzero(ever).max()) + 1 if ever.any() else 1
    if adapter == "cmx_3600" and n_tracks > 1:
        raise TimelineError(f"{path}: a CMX 3600 EDL carries one video track; these frames use {n_tracks} "
                            "track slots (write .otio or .xml instead)")
    rate = _timecode_rate(fps, path) if rate is None else float(rate)
    if not (rate > 0 and otio.opentime.RationalTime.is_valid_timecode_rate(rate) and (rate / fps).is_integer()):
        raise TimelineError(f"{path}: cannot write at {rate:g} fps: an editing rate must be a SMPTE timecode rate "
                            f"(24, 25, 30, 50, 60 ...) and a whole multiple of the frames' {fps:g} fps")
    media = _Media(names, main_asset, recording_url, rate, rate / fps, start_time * fps, T)
    tl = otio.schema.Timeline(name=name)
    tl.metadata[METADATA_KEY] = {"version": FORMAT_VERSION, "fps": float(fps), "start_time": float(start_time), "frames": T}
    tl.metadata["fcp_xml"] = {"media": {"video": {"format": _fcp_format(FRAME_WIDTH, FRAME_HEIGHT, rate)}}}
    counts: Counter = Counter()
    for slot in range(n_tracks):
        counts["empty_tracks"] += int(not ever[slot])
        tl.tracks.append(_video_track(frames, slot, param_tolerance, media, adapter != "cmx_3600", counts))
    audio = adapter != "cmx_3600"
    if audio:  # the recording's sound under the whole edit
        sound = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
        sound.append(otio.schema.Clip(name=media.recording, media_reference=media.reference(main_asset),
                                      source_range=otio.opentime.TimeRange(media.rt(media.rec0), media.rt(T))))
        tl.tracks.append(sound)
    carried = {"otio_json": "metadata+filters", "fcp_xml": "filters", "cmx_3600": "none"}[adapter]
    with atomic_path(path) as tmp:
        try:
            otio.adapters.write_to_file(tl, str(tmp), adapter_name=adapter)
        except Exception as exc:
            raise TimelineError(f"{path}: {adapter} cannot write this timeline ({type(exc).__name__}: {exc})") from exc
    report = {"file": str(path), "adapter": adapter, "frames": T, "fps": float(fps), "timeline_rate": float(rate),
              "start_time": float(start_time), "recording": media.recording, "audio_tracks": int(audio),
              "tracks": n_tracks, "clips": counts["clips"], "gaps": counts["gaps"], "empty_tracks": counts["empty_tracks"],
              "params_carried": carried, "values_clamped": clamped}
    log.info("%s: wrote %d clips on %d tracks (%d frames at %g fps, parameters as %s)", path, report["clips"],
             n_tracks, T, rate, carried)
    return report


def _checked_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 2 or frames.shape[1] != schema.TRACK_WIDTH:
        raise ValueError(f"frames must have shape (T, {schema.TRACK_WIDTH}), got {frames.shape}")
    if not np.isfinite(frames).all():
        raise ValueError(f"frames hold non-finite values (first at row {int(np.argwhere(~np.isfinite(frames))[0][0])})")
    return frames


@dataclass
class _Media:
    """The media an exported edit refers to, and its time: frames at fps -> the file's rate."""

    names: dict[int, str]  # asset class -> media name
    main_asset: int
    recording_url: str | None
    rate: float  # the file's frame rate
    step: float  # file frames per track frame
    rec0: float  # recording time of timeline frame 0, in track frames
    frames: int

    @property
    def recording(self) -> str:
        return self.names[self.main_asset]

    def rt(self, frame: float) -> otio.opentime.RationalTime:
        return otio.opentime.RationalTime(frame * self.step, self.rate)

    def reference(self, asset: int) -> otio.schema.ExternalReference:
        media = self.names.get(asset, default_media_name(asset))
        url = self.recording_url if asset == self.main_asset and self.recording_url else media
        ref = otio.schema.ExternalReference(
            target_url=url, available_range=otio.opentime.TimeRange(self.rt(0), self.rt(max(self.rec0, 0) + self.frames)))
        ref.name = media
        if asset == self.main_asset:  # Premiere reads clip centres in the media's own frame size
            ref.metadata["fcp_xml"] = {"media": {"video": _fcp_format(FRAME_WIDTH, FRAME_HEIGHT, self.rate), "audio": {}}}
        return ref


def _video_track(frames: np.ndarray, slot: int, tolerance: float | np.ndarray, media: _Media, filters: bool,
                 counts: Counter) -> otio.schema.Track:  # fmt: skip
    """One slot's clips and gaps; parameters as our metadata and, with `filters`, FCP filters."""
    track = otio.schema.Track(name=f"V{slot + 1}", kind=otio.schema.TrackKind.Video)
    track.metadata[METADATA_KEY] = {"slot": slot}
    for t0, t1, values in _runs(frames, slot, tolerance):
        duration = media.rt(t1 - t0)
        if values is None:
            track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(media.rt(0), duration)))
            counts["gaps"] += 1
            continue
        asset = int(values[1])
        params = {p: float(v) for p, v in zip(CLIP_PARAMS, values[2:])}
        source_start = media.rec0 + t0 if asset == media.main_asset else t0
        ref = media.reference(asset)
        clip = otio.schema.Clip(name=ref.name, media_reference=ref,
                                source_range=otio.opentime.TimeRange(media.rt(source_start), duration))
        clip.metadata[METADATA_KEY] = {"asset_id": asset, **params}
        if filters:
            clip.metadata["fcp_xml"] = {"filter": _fcp_filters(params)}
        track.append(clip)
        counts["clips"] += 1
    return track
