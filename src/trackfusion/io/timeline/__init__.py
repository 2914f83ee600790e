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
one :class:`trackfusion.timemap.TimeMap` from timeline time to recording time, built in
``recording_time`` and tested on its own:

1. ``metadata["trackfusion"]`` on the timeline (our own export): frame 0 is its
   ``start_time`` and the grid keeps that phase, so a round trip is exact. An uncut export
   is one offset (as before jump cuts); one with ``edit_frames`` (frames dropped) is read
   as in 2., over its declared ``frames``.
2. the recording's clips (media named ``main_media``, else of class ``main_asset``): every
   clip is its own segment, from its own source in-point (its ``source_range`` start less
   its media's ``available_range`` start, the file's timecode, where the format gives one;
   an EDL's whole-hour source timecode is recording 0) at its speed (a ``LinearTimeWarp``,
   or FCP's Time Remap filter, by its keyframe graph where it has one, maps linearly and is counted in
   ``speed_changes``; a speed that varies is counted in ``time_remaps`` and mapped at real
   time over its source range). A timeline instant shows the recording time of the recording's video clip
   there, else of its audio clip (a cutaway or a title over its sound); clips under a
   transition play their handles too. Where the file carries no sound of the recording (an
   EDL), a cutaway between two clips that continue one another plays the recording on
   (``cutaways_bridged``). The frames cover the recording from time 0 as far as its media
   reach (the longest ``available_range``, else the end of the last used stretch).
3. otherwise timeline time is recording time (``report["time_base"] == "timeline"``).

Each frame of the recording takes every track's state at the timeline instant that plays
it. ``kept`` (T,) uint8 is 1 where the edit plays that frame (picture or sound) and 0
where the editor dropped it; a dropped frame's 180 values are all zero. A stretch played
twice, or before an earlier clip's source, is counted (``recording_reused_frames``,
``recording_out_of_order_clips``; a clip's sound offset from its picture is no second
use) and its first use in timeline order wins. Timeline time where no part of the
recording plays (an intro card, a title over black) lands on no frame and is counted in
seconds (``timeline_s_without_recording``, a float); a clip that lands on no kept frame
in ``clips_on_no_kept_frame``. ``main_clips_off_grid`` is gone: jump cuts are segments.

Bad input is counted and the rest of the edit kept: a clip of the recording with a
negative or reversed source range (``clips_bad_source_range``) or at 0 % speed
(``clips_zero_speed``) is left out of the map; one whose source runs past its media's
end is counted (``clips_past_media_end``) and cut at that end (FCP's Time Remap filter
counts in/out on the retimed clip, its graph maps them to media frames: read otherwise,
a slowed clip would seem to run past its file); a second media named as
the recording is counted (``recordings_claiming_id``) and only the first met in file
order is the recording; an edit mapping more than ``MAX_HOURS`` of recording is refused
(TimelineError). Timeline time 0 is the earliest item of any video track (for an EDL, the
earliest record-in). ``duration_s`` fixes the output to recording times ``[0,
duration_s)``; frames the edit plays outside the output are counted
(``frames_outside_recording``).

Export writes ``.xml`` and ``.edl`` at a SMPTE timecode rate that is a whole multiple
of fps (30 for 10 fps: timecode has no 10 fps), ``.otio`` at fps itself. The fcp_xml
adapter writes no ``clip.effects``; it writes ``clip.metadata["fcp_xml"]`` as XML, so
the Basic Motion and Crop filters are put there. It drops trailing gaps of video tracks; the
recording's sound under the edit still carries those frames' time.

Export with ``kept``: frames where it is 0 are dropped; the kept runs go back to back in
recording order, each one clip of the recording with its own source range (its sound cut
with it), other tracks at their edit time; ``report["jump_cuts"]`` is the runs less one.
``kept=None`` or all ones writes the file exactly as before (byte for byte).
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
