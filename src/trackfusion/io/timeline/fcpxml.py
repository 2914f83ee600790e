"""FCPXML (``.fcpxml``) for Final Cut Pro and DaVinci Resolve, written to Apple's schema (version 1.8).

OpenTimelineIO's ``fcpx_xml`` adapter reads FCPXML but writes neither positions, scales
nor crops, and its output puts ``asset-clip`` elements at the document's top level, where
the DTD has none (Resolve refuses such files). So the file is written here:

- ``resources``: one ``format`` (the 1920 x 1080 sequence at the timeline's rate, 29.97 as
  ``1001/30000s``) and one ``asset`` per media file, its file as ``src``;
- ``library / event / project / sequence / spine``: V1 is the primary storyline (``asset-clip``
  and ``gap`` elements back to back, so each jump cut is an edit point); V2 and up are connected
  clips (``lane`` 1, 2 ...), attached to the storyline item under their start, their ``offset``
  in that item's own time as FCPXML counts it; the recording's sound is the edit's audio
  track, connected below (negative lanes, ``srcEnable="audio"``), and the picture clips are
  ``srcEnable="video"``, so a cutaway keeps the sound and a jump cut cuts it;
- a clip's placement: ``adjust-crop`` (``trim-rect``) and ``adjust-transform`` (``position``,
  ``scale``), in FCPXML's units: position relative to the frame centre, y up, in percent of
  the frame height; scale a ratio; trim edges in the same units as position.

Every time is a whole number of frames of the format (``n*1001/30000s``), so nothing drifts on
long recordings. Write only here (the importer reads .otio / .xml / .edl); the test reads it back
through the ``fcpx_xml`` adapter.
"""
from __future__ import annotations

import urllib.parse
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from trackfusion.io.timeline.records import (
    DEFAULTS, FRAME_HEIGHT, FRAME_WIDTH, FileRead, TimelineError, TimelineFormat, clip_params, editing_rate,
    timeline_rate,
)

ADAPTER = "fcpxml 1.9 (trackfusion)"
VERSION = "1.8"  # the asset's file as its ``src``, which the fcpx_xml adapter (and Resolve) read


def _seconds(frames: int, rate: Fraction) -> str:
    """`frames` of a format at `rate` as FCPXML's rational seconds."""
    t = Fraction(frames) / rate
    return "0s" if t == 0 else f"{t.numerator}/{t.denominator}s" if t.denominator != 1 else f"{t.numerator}s"


def _frames(t: otio.opentime.RationalTime, rate: Fraction) -> int:
    return int(round(t.value * float(rate) / t.rate))


def _url(ref: otio.schema.ExternalReference | None, name: str) -> str:
    url = getattr(ref, "target_url", None) or name
    if "://" in url:
        return url
    path = Path(url)
    return path.resolve().as_uri() if path.is_absolute() or path.exists() else urllib.parse.quote(url)


def _adjustments(clip_el: ET.Element, clip: otio.schema.Clip) -> None:
    params = clip_params(clip)
    unit = FRAME_HEIGHT / 100.0  # FCPXML's position unit: a hundredth of the frame height
    crops = [params[k] / 100.0 for k in ("crop_l", "crop_t", "crop_r", "crop_b")]
    if any(c > 0 for c in crops):
        crop = ET.SubElement(clip_el, "adjust-crop", mode="trim")
        l, t, r, b = crops
        ET.SubElement(crop, "trim-rect", left=f"{l * FRAME_WIDTH / unit:.4f}",
                      top=f"{t * FRAME_HEIGHT / unit:.4f}", right=f"{r * FRAME_WIDTH / unit:.4f}",
                      bottom=f"{b * FRAME_HEIGHT / unit:.4f}")
    if any(abs(params[k] - DEFAULTS[k]) > 1e-6 for k in ("scale", "x", "y")):
        x = (params["x"] - FRAME_WIDTH / 2) / unit
        y = -(params["y"] - FRAME_HEIGHT / 2) / unit  # FCPXML's y goes up
        s = params["scale"] / 100.0
        ET.SubElement(clip_el, "adjust-transform", position=f"{x:.4f} {y:.4f}", scale=f"{s:.6f} {s:.6f}")


def write(tl: otio.schema.Timeline, path: Path) -> None:
    """`tl` as FCPXML at `path` (module docstring)."""
    rate = editing_rate(timeline_rate(tl))
    root = ET.Element("fcpxml", version=VERSION)
    resources = ET.SubElement(root, "resources")
    fmt_name = f"FFVideoFormat1080p{round(float(rate) * 100) if rate.denominator != 1 else rate.numerator}"
    ET.SubElement(resources, "format", id="r1", name=fmt_name, frameDuration=_seconds(1, rate),
                  width=str(FRAME_WIDTH), height=str(FRAME_HEIGHT))
    assets: dict[str, str] = {}
    lengths: dict[str, int] = {}
    tracks = [t for t in tl.tracks if isinstance(t, otio.schema.Track)]
    for track in tracks:  # how much of each media the edit reaches: its asset's duration
        for clip in track.find_clips():
            url = _url(clip.media_reference, clip.name)
            avail = getattr(clip.media_reference, "available_range", None)
            reach = _frames(clip.source_range.end_time_exclusive(), rate)
            if avail is not None:
                reach = max(reach, _frames(avail.end_time_exclusive(), rate))
            lengths[url] = max(lengths.get(url, 0), reach)
    has_sound = {_url(c.media_reference, c.name) for t in tracks if t.kind == otio.schema.TrackKind.Audio
                 for c in t.find_clips()}

    def asset_of(clip: otio.schema.Clip) -> str:
        url = _url(clip.media_reference, clip.name)
        if url not in assets:
            rid = f"r{len(assets) + 2}"
            assets[url] = rid
            name = (clip.media_reference.name if clip.media_reference is not None else "") or clip.name
            el = ET.SubElement(resources, "asset", id=rid, name=name, start="0s",
                               duration=_seconds(lengths[url], rate), hasVideo="1", format="r1",
                               hasAudio="1" if url in has_sound else "0", src=url)
            if url in has_sound:
                el.set("audioSources", "1")
                el.set("audioChannels", "2")
                el.set("audioRate", "48000")
        return assets[url]

    video = [t for t in tracks if t.kind == otio.schema.TrackKind.Video]
    audio = [t for t in tracks if t.kind == otio.schema.TrackKind.Audio]
    if not video:
        raise TimelineError(f"{path}: the timeline has no video track to write")

    def items(track: otio.schema.Track):
        """(start frame, end frame, clip or None) of a track on the edit's time, every edge from its own time."""
        out, position = [], 0
        for i, item in enumerate(track):
            end = _frames(track.range_of_child_at_index(i).end_time_exclusive(), rate)
            if end > position:
                out.append((position, end, item if isinstance(item, otio.schema.Clip) else None))
            position = max(position, end)
        return out

    primary = items(video[0])
    total = max([e for t in tracks for _, e, _ in items(t)] or [0])
    if not primary or primary[-1][1] < total:
        primary.append((primary[-1][1] if primary else 0, total, None))  # the storyline spans the whole edit
    library = ET.SubElement(root, "library")
    event = ET.SubElement(library, "event", name="trackfusion")
    project = ET.SubElement(event, "project", name=tl.name or "trackfusion")
    sequence = ET.SubElement(project, "sequence", format="r1", duration=_seconds(total, rate), tcStart="0s",
                             tcFormat="NDF", audioLayout="stereo", audioRate="48k")
    spine = ET.SubElement(sequence, "spine")
    storyline: list[tuple[int, int, int, ET.Element]] = []  # (start, end, its own start frame, element)
    for a, b, clip in primary:
        if clip is None:
            el = ET.SubElement(spine, "gap", name="Gap", offset=_seconds(a, rate), start="0s",
                               duration=_seconds(b - a, rate))
            storyline.append((a, b, 0, el))
            continue
        own = _frames(clip.source_range.start_time, rate)
        el = ET.SubElement(spine, "asset-clip", ref=asset_of(clip), name=clip.name, offset=_seconds(a, rate),
                           start=_seconds(own, rate), duration=_seconds(b - a, rate), srcEnable="video")
        _adjustments(el, clip)
        storyline.append((a, b, own, el))

    def connect(a: int, b: int, clip: otio.schema.Clip, lane: int, enable: str) -> None:
        parent = next((s for s in storyline if s[0] <= a < s[1]), storyline[-1])
        pa, _, pown, pel = parent
        own = _frames(clip.source_range.start_time, rate)
        el = ET.SubElement(pel, "asset-clip", ref=asset_of(clip), name=clip.name, lane=str(lane),
                           offset=_seconds(pown + a - pa, rate), start=_seconds(own, rate),
                           duration=_seconds(b - a, rate), srcEnable=enable)
        if enable == "video":
            _adjustments(el, clip)

    for lane, track in enumerate(video[1:], start=1):
        for a, b, clip in items(track):
            if clip is not None:
                connect(a, b, clip, lane, "video")
    for lane, track in enumerate(audio, start=1):
        for a, b, clip in items(track):
            if clip is not None:
                connect(a, b, clip, -lane, "audio")
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n{body}\n', encoding="utf-8")


def read(path: Path, edl_rate: float) -> FileRead:
    raise TimelineError(f"{path}: FCPXML is written for Final Cut Pro and DaVinci Resolve, not imported; import the "
                        "edit's .otio, .xml or .edl")


FORMAT = TimelineFormat(adapter=ADAPTER, read=read, params_carried="adjust-transform+adjust-crop", write=write, any_rate=True)
