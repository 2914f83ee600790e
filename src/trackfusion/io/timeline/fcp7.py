"""FCP 7 / Premiere XML (``.xml``, the ``fcp_xml`` adapter): what the adapter misses.

Before the adapter reads a file, items it rejects are removed and overlaps it would hide
are refused; after, the ``<enabled>`` flags it drops are put back. Parameters travel as
the "Basic Motion" (``effectid`` basic) and "Crop" (``effectid`` crop) filters: the
adapter exposes them as ``clip.effects`` with the filter's XML as a dict under
``effect.metadata["fcp_xml"]``, and writes ``clip.metadata["fcp_xml"]`` as XML.
"""
from __future__ import annotations

import functools
import logging
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

import opentimelineio as otio

from trackfusion.io.timeline.records import (
    FRAME_HEIGHT, FRAME_WIDTH, FileRead, ImportTally, TimelineError, TimelineFormat, number,
)

log = logging.getLogger(__name__)

ADAPTER = "fcp_xml"
#: FCP 7 Crop filter parameter ids -> our crop parameters
FCP_CROP = {"left": "crop_l", "right": "crop_r", "top": "crop_t", "bottom": "crop_b"}
#: the FCP filter that carries each clip parameter
FILTER_OF: dict[str, str] = {"scale": "motion", "x": "motion", "y": "motion", **{c: "crop" for c in FCP_CROP.values()}}


# --------------------------------------------------------------------------- the file, around the adapter


def read(path: Path, edl_rate: float) -> FileRead:
    root = _parse_xml(path)
    skipped = _drop_unsupported_items(path, root)
    _check_overlaps(path, root)
    obj = otio.adapters.read_from_string(ET.tostring(root, encoding="unicode"), adapter_name=ADAPTER)
    return FileRead(obj, skipped, functools.partial(_apply_enabled, path, root))


def _parse_xml(path: Path) -> ET.Element:
    """The XML tree, from bytes: a UTF-8 byte-order mark (Premiere on Windows writes one) is fine."""
    try:
        return ET.fromstring(path.read_bytes())
    except ET.ParseError as exc:
        raise TimelineError(f"{path}: not a readable fcp_xml timeline (not well-formed XML: {exc})") from exc


def _is_false(element: ET.Element) -> bool:
    return (element.findtext("enabled") or "TRUE").strip().upper() == "FALSE"


def _drop_unsupported_items(path: Path, root: ET.Element) -> Counter:
    """Remove the clip items of sequence tracks that the fcp_xml adapter cannot read.

    A multicam clip (``<multiclip>``) or a clip item with neither a file nor a nested
    sequence makes the adapter reject the whole edit; without it the rest imports.
    Each is counted and logged. A file defined inside a removed item and referenced by
    id later keeps its definition (moved to the first later reference).
    """
    skipped: Counter = Counter()
    defined = {e.get("id") for e in root.iter("clipitem") if len(e) and e.get("id")}
    for track in root.iter("track"):
        for item in [e for e in track if e.tag == "clipitem"]:
            if item.find("file") is not None or item.find("sequence") is not None:
                continue
            if not len(item) and item.get("id") in defined:
                continue  # a reference to a clip item defined before (the adapter writes equal clips so)
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


def _apply_enabled(path: Path, root: ET.Element, tl: otio.schema.Timeline) -> None:
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


def _check_overlaps(path: Path, root: ET.Element) -> None:
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


# --------------------------------------------------------------------------- filters in


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or hasattr(value, "items"):
        return [value]
    return list(value)


def media_frame_size(item: otio.core.Item) -> tuple[float, float] | None:
    """(width, height) of the clip's media where the file gives it (FCP XML ``<file><media>
    <video><samplecharacteristics>``), else None."""
    ref = getattr(item, "media_reference", None)
    node: Any = (ref.metadata.get("fcp_xml") if ref is not None else None) or {}
    for key in ("media", "video", "samplecharacteristics"):
        node = node.get(key) if hasattr(node, "get") else None
    if not hasattr(node, "get"):
        return None
    width, height = number(node.get("width")), number(node.get("height"))
    return (width, height) if width and height and width > 0 and height > 0 else None


def _constant_keyframes(keyframes: Any) -> Any:
    """The value of FCP keyframes that all hold one value (a number, or a centre's dict), else None."""
    values = [k.get("value") for k in _as_list(keyframes) if hasattr(k, "get")]
    if not values or any(v is None for v in values):
        return None
    first = values[0]
    if hasattr(first, "get"):
        keys = ("horiz", "vert")
        pairs = [tuple(number(v.get(k)) if hasattr(v, "get") else None for k in keys) for v in values]
        return dict(zip(keys, pairs[0])) if None not in pairs[0] and all(p == pairs[0] for p in pairs) else None
    numbers = [number(v) for v in values]
    return first if numbers[0] is not None and all(n == numbers[0] for n in numbers) else None


def read_filter(effect: otio.schema.Effect, found: dict[str, float], from_effects: bool,
                media_size: tuple[float, float] | None, tally: ImportTally) -> str | None:
    """Read one FCP filter into `found` (only `from_effects`: no metadata of ours gave them);
    its kind ("motion", "crop") or None if not ours.

    Basic Motion ``center`` (``horiz``, ``vert``) is the offset from the frame centre in
    fractions of the frame (edges at +-0.5, +vert down): ``x = 960 + 1920 * horiz``,
    ``y = 540 + 1080 * vert``. A keyframed value counts only where every keyframe holds it.
    """
    fcp = effect.metadata.get("fcp_xml")
    effect_id = str((fcp or {}).get("effectid") or effect.effect_name or "").lower()
    label = str(effect.name or effect.effect_name or effect_id or type(effect).__name__)
    kind = "motion" if effect_id == "basic" or label.lower() == "basic motion" else (
        "crop" if effect_id == "crop" or label.lower() == "crop" else None)
    if kind is None or fcp is None or not from_effects:
        if kind is None:
            tally.ignored_effects[label] += 1
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
                tally.counts["keyframed_params_constant"] += 1
        if value is None:
            for t in targets:
                tally.unreadable[t] += 1
            continue
        if pid == "center":
            # Premiere: the offset from the frame centre in units of the clip's own media frame
            # (a portrait clip or a still is not 1920 x 1080); the output frame where no size is given
            width, height = media_size or (FRAME_WIDTH, FRAME_HEIGHT)
            if media_size is not None and media_size != (FRAME_WIDTH, FRAME_HEIGHT):
                tally.counts["centres_in_media_size"] += 1
            horiz = number(value.get("horiz")) if hasattr(value, "get") else None
            vert = number(value.get("vert")) if hasattr(value, "get") else None
            for t, v, centre, size in (("x", horiz, FRAME_WIDTH / 2, width), ("y", vert, FRAME_HEIGHT / 2, height)):
                if v is None:
                    tally.unreadable[t] += 1
                else:
                    found[t] = centre + size * v
        else:
            v = number(value)
            if v is None:
                tally.unreadable[targets[0]] += 1
            else:
                found[targets[0]] = v
    return kind


# --------------------------------------------------------------------------- filters out


def filters(params: Mapping[str, float]) -> list[dict]:
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


def frame_format(width: int, height: int, rate: float) -> dict:
    """An FCP 7 ``<samplecharacteristics>`` dict (a sequence's format, a file's frame size)."""
    return {"samplecharacteristics": {
        "rate": {"timebase": str(int(round(rate))), "ntsc": "FALSE"}, "width": str(width), "height": str(height),
        "anamorphic": "FALSE", "pixelaspectratio": "square", "fielddominance": "none"}}


FORMAT = TimelineFormat(adapter=ADAPTER, read=read)
