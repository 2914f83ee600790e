"""MLT XML (``.mlt``) for Shotcut and Kdenlive, and for ``melt``, the engine both are built on.

OpenTimelineIO's ``mlt_xml`` adapter writes cuts but no positions, scales or crops, so the
file is written here, to MLT's own XML: one ``avformat`` producer per media file, one
playlist per track (blanks for gaps; an entry's ``in`` / ``out`` are frames at the profile's
rate, ``out`` inclusive), each clip's placement as two filters on its entry, ``crop``
(``use_profile``: profile pixels) then ``affine`` (``transition.rect``: where the visible part
lands, profile pixels), both from ``io.placement`` (the reading ``render`` uses), and the
video tracks stacked bottom to top by ``affine`` transitions. Picture tracks carry no sound
(``hide="audio"``); the recording's sound is the edit's audio tracks (``hide="video"``),
mixed in by ``mix`` transitions, so a jump cut cuts it and a cutaway does not.

The profile is the sequence's 1920 x 1080 frame at the timeline's rate (29.97 as
30000/1001), square pixels. Media are taken to fill that frame at 100 % (MLT scales a
producer to the profile, keeping its shape); what MLT cannot carry is nothing the track
layout holds. Write only: the importer does not read MLT.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from trackfusion.io.placement import place
from trackfusion.io.timeline.records import (
    CLIP_PARAMS, DEFAULTS, FRAME_HEIGHT, FRAME_WIDTH, METADATA_KEY, FileRead, TimelineError, TimelineFormat, clip_params,
    editing_rate, timeline_rate,
)

ADAPTER = "mlt (trackfusion)"


def _prop(parent: ET.Element, name: str, value) -> None:
    ET.SubElement(parent, "property", name=name).text = str(value)


def _frames(t: otio.opentime.RationalTime, rate: Fraction) -> int:
    return int(round(t.value * float(rate) / t.rate))


def _placement_filters(entry: ET.Element, clip: otio.schema.Clip) -> None:
    params = clip_params(clip)
    if all(abs(params[p] - DEFAULTS[p]) < 1e-6 for p in CLIP_PARAMS):
        return  # full frame: no filter, as an editor writes it
    frame = (FRAME_WIDTH, FRAME_HEIGHT)
    p = place(params, frame, frame)
    sx0, sy0, sx1, sy1 = p.source
    if sx0 > 0 or sy0 > 0 or sx1 < FRAME_WIDTH or sy1 < FRAME_HEIGHT:
        crop = ET.SubElement(entry, "filter", mlt_service="crop")
        for name, value in (("left", sx0), ("right", FRAME_WIDTH - sx1), ("top", sy0), ("bottom", FRAME_HEIGHT - sy1)):
            _prop(crop, name, int(round(value)))
        _prop(crop, "use_profile", 1)
    x0, y0, x1, y1 = p.dest
    affine = ET.SubElement(entry, "filter", mlt_service="affine")
    _prop(affine, "transition.rect", f"{x0:.3f} {y0:.3f} {x1 - x0:.3f} {y1 - y0:.3f} 1")
    _prop(affine, "transition.distort", 1)
    _prop(affine, "transition.fill", 1)


def write(tl: otio.schema.Timeline, path: Path) -> None:
    """`tl` as MLT XML at `path` (module docstring)."""
    rate = editing_rate(timeline_rate(tl))
    root = ET.Element("mlt", LC_NUMERIC="C", version="7.12.0", title=tl.name or "trackfusion", producer="tractor0")
    ET.SubElement(root, "profile", description=f"trackfusion {FRAME_WIDTH}x{FRAME_HEIGHT} {float(rate):.3f} fps",
                  width=str(FRAME_WIDTH), height=str(FRAME_HEIGHT), progressive="1", sample_aspect_num="1",
                  sample_aspect_den="1", display_aspect_num="16", display_aspect_den="9",
                  frame_rate_num=str(rate.numerator), frame_rate_den=str(rate.denominator), colorspace="709")
    producers: dict[str, str] = {}
    playlists: list[tuple[ET.Element, str]] = []

    def producer_of(clip: otio.schema.Clip) -> str:
        ref = clip.media_reference
        resource = getattr(ref, "target_url", None) or ref.name or clip.name
        if resource.startswith("file://"):
            from urllib.parse import unquote, urlparse

            resource = unquote(urlparse(resource).path)
        if resource not in producers:
            pid = f"producer{len(producers)}"
            producers[resource] = pid
            el = ET.Element("producer", id=pid)
            _prop(el, "resource", resource)
            _prop(el, "mlt_service", "avformat")
            _prop(el, "shotcut:caption", ref.name or clip.name)
            root.insert(1 + len(producers) - 1, el)
        return producers[resource]

    tracks = [t for t in tl.tracks if isinstance(t, otio.schema.Track)]
    for track in tracks:
        video = track.kind == otio.schema.TrackKind.Video
        pl = ET.Element("playlist", id=f"playlist{len(playlists)}")
        _prop(pl, "shotcut:video" if video else "shotcut:audio", 1)
        _prop(pl, "shotcut:name", track.name)
        position = 0  # frames of the profile so far: every edge from the track's own time, so none drifts
        for i, item in enumerate(track):
            rng = track.range_of_child_at_index(i)
            end = _frames(rng.end_time_exclusive(), rate)
            length = end - position
            if length <= 0:
                continue
            if isinstance(item, otio.schema.Clip):
                start = _frames(item.source_range.start_time, rate)
                entry = ET.SubElement(pl, "entry", producer=producer_of(item), **{"in": str(start),
                                                                                  "out": str(start + length - 1)})
                if video:
                    _placement_filters(entry, item)
            else:  # a gap (or anything else: a transition keeps its clips' cut points)
                ET.SubElement(pl, "blank", length=str(length))
            position = end
        playlists.append((pl, "audio" if video else "video"))
    for pl, _ in playlists:
        root.append(pl)
    tractor = ET.SubElement(root, "tractor", id="tractor0")
    _prop(tractor, "shotcut", 1)
    multitrack = ET.SubElement(tractor, "multitrack")
    for pl, hide in playlists:
        ET.SubElement(multitrack, "track", producer=pl.get("id"), hide=hide)
    kinds = [t.kind for t in tracks]
    videos = [i for i, k in enumerate(kinds) if k == otio.schema.TrackKind.Video]
    audios = [i for i, k in enumerate(kinds) if k != otio.schema.TrackKind.Video]
    base = videos[0] if videos else 0
    for i in videos[1:]:  # each picture track over those below it
        tr = ET.SubElement(tractor, "transition", mlt_service="affine")
        for name, value in (("a_track", base), ("b_track", i), ("always_active", 1), ("fill", 1), ("distort", 1)):
            _prop(tr, name, value)
    for i in audios:  # each sound track mixed in
        if i == base:
            continue
        tr = ET.SubElement(tractor, "transition", mlt_service="mix")
        for name, value in (("a_track", base), ("b_track", i), ("always_active", 1), ("sum", 1)):
            _prop(tr, name, value)
    ET.indent(root)
    path.write_bytes(b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8"))


def read(path: Path, edl_rate: float) -> FileRead:
    raise TimelineError(f"{path}: MLT files are written for Shotcut, Kdenlive and melt, not read; import the edit's "
                        ".otio, .xml or .edl")


FORMAT = TimelineFormat(adapter=ADAPTER, read=read, params_carried="crop+affine filters", write=write, any_rate=True)
