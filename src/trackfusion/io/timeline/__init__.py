"""Editor timelines <-> track frames, through OpenTimelineIO and its packaged adapters.

Formats, chosen once by extension (``formats``): ``.otio`` (native JSON, ``otio_native``),
``.xml`` (FCP 7 / Premiere XML, adapter ``fcp_xml``, ``fcp7``), ``.edl`` (CMX 3600,
adapter ``cmx_3600``, ``edl``). ``reading`` and ``sampling`` import, ``writing``
exports; ``records`` holds what every format shares and ``assets`` the asset rules.

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
is recording time ``start_time + i / fps`` (the contract of ``sequences.npz``), through
one :class:`trackfusion.timemap.TimeMap`. The map from timeline time to recording time
is, in order:

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

from trackfusion.io.timeline.assets import default_media_name
from trackfusion.io.timeline.formats import ADAPTERS, FORMATS
from trackfusion.io.timeline.reading import import_timeline
from trackfusion.io.timeline.records import (
    CLIP_PARAMS, DEFAULTS, FORMAT_VERSION, METADATA_KEY, ImportedTimeline, TimelineError,
)
from trackfusion.io.timeline.sampling import MAX_HOURS
from trackfusion.io.timeline.writing import VALID_RANGES, clamp_params, export_timeline

__all__ = [
    "ADAPTERS", "CLIP_PARAMS", "DEFAULTS", "FORMATS", "FORMAT_VERSION", "MAX_HOURS", "METADATA_KEY", "VALID_RANGES",
    "ImportedTimeline", "TimelineError", "clamp_params", "default_media_name", "export_timeline", "import_timeline",
]
