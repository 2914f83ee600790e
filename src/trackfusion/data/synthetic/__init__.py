"""The synthetic corpus: recordings with content events and an editor who cuts on them.

``generate_corpus(out_dir, params.synthetic, fps)`` writes exactly the raw contract of
SPEC section 3 (``sequences.npz`` and two feature CSVs per video), so the default
corpus and a user's real data go through the same code; beside it go two extra files,
``schema.CEILING_FILE`` and ``schema.CEILING_LAYOUT_FILE`` (below), which only the
references read. Same params give
byte-identical files. How a video is made, one module a step:

1. ``content``: the recording is simulated in continuous recording time (seconds), as
   event lists: scenes, speech, text overlays, motion bursts.
2. ``editor``: what an editor is (a recording and streams of its own in, a timeline
   out); ``event_editor`` turns the content events into the 20 x 9 track timeline at
   ``fps``, with noise, and makes its noiseless twin; ``highlight_editor``, the default
   (``synthetic.editor: highlight``), keeps what stands out in the recording (``kept``
   flags, with noise, and their noiseless twin) and lays it out as ``event_editor`` does.
3. ``files``: the two feature tables sample the content at their own times and are
   written with the video's faults (``faults``: the corpus-wide plan, each fault's file,
   rows and cells).
4. ``generate``: the loop over videos, ``sequences.npz`` and the ceiling; ``command``
   the command line (``python -m trackfusion.data.synthetic``, ``trackfusion generate``).

Random streams
--------------
Everything is deterministic from ``synthetic.seed``; video ``i`` does not depend on the
other videos. Each stream is drawn from in this order and by nothing else:

- ``[seed, 0x5CE7E]``: the CLIP prototypes of the scene kinds (corpus-wide).
- ``[seed, 0xFA17]``: the fault plan (corpus-wide).
- ``[seed, i]``, video ``i``'s recording stream: its id, length, start and horizon, its
  content (``simulate_recording``); then today's editor, which has always drawn here
  (its style, then its timeline's noise: ``EventEditor.streams`` hands it this
  generator); then the feature tables' samples (``write_feature_files``).
- ``[seed, i, 1]``: video ``i``'s faults (which file each hits, rows, cells).
- ``[seed, i, 2]``: today's editor's noiseless twin.
- ``[seed, i, 3]``: the highlight editor's selection (its share, then its noise); its
  layout draws where ``event_editor`` always drew.
- ``SeedSequence([seed, i, tag]).spawn(2)``: any other editor's timeline and noiseless
  streams (``Editor.streams``, ``tag`` >= 3), so adding an editor moves neither the
  content nor today's editor. (Under another editor the feature tables are drawn
  right after the content, so their sample noise differs from the default corpus's.)

The ceiling
-----------
``editor_ceiling.json`` beside ``sequences.npz``: the cut events (``cuts.video_cut_events``:
a run of consecutive cut frames is one event, at its first frame) of the editor's
noiseless layout over the edit's kept frames in order, and the recording frames its
noiseless selection keeps. Scored against the true cuts (``cuts.match_events``) and the
true kept flags (``trackfusion.selection``) they give the ceilings of any content-based
cut and selection predictor. Layout:
``{"description": str, "tolerance_frames": 5, "videos": {video_id: [frame, ...]},
"selection": {video_id: [[start, end], ...]}}``, cut frames sorted ints in ``[1, kept T)``,
segments sorted, disjoint ``[start, end)`` recording frames.

``editor_ceiling_layout.npz`` beside it: per video id, the editor's noiseless timeline
itself over the edit's kept frames in order, an (edit length, 180) float32 array in the
files' units (the layout ceiling: every content event followed, exactly its base lag,
no stickers).
"""
from trackfusion.data.synthetic.command import add_arguments, main, run
from trackfusion.data.synthetic.content import (
    CAPTIONS,
    Content,
    Recording,
    clip_prototypes,
    simulate_content,
    simulate_recording,
    video_id,
)
from trackfusion.data.synthetic.editor import Editor, EditorOutput, EditorStreams
from trackfusion.data.synthetic.event_editor import (
    TRACK_STICKER,
    EventEditor,
    Style,
    edit_timeline,
    sample_style,
)
from trackfusion.data.synthetic.faults import FAULT_KINDS, FAULT_RATES, plan_faults
from trackfusion.data.synthetic.files import audio_columns, visual_columns, write_feature_files
from trackfusion.data.synthetic.generate import (
    CEILING_DESCRIPTION,
    DEFAULT_EDITOR,
    EDITORS,
    GeneratedVideo,
    generate_corpus,
    generate_video,
)
from trackfusion.data.synthetic.highlight_editor import HighlightEditor, interest
from trackfusion.schema import CEILING_FILE

__all__ = [
    "CAPTIONS",
    "CEILING_DESCRIPTION",
    "CEILING_FILE",
    "DEFAULT_EDITOR",
    "EDITORS",
    "FAULT_KINDS",
    "FAULT_RATES",
    "GeneratedVideo",
    "TRACK_STICKER",
    "Content",
    "Editor",
    "EditorOutput",
    "EditorStreams",
    "EventEditor",
    "HighlightEditor",
    "Recording",
    "Style",
    "add_arguments",
    "audio_columns",
    "clip_prototypes",
    "edit_timeline",
    "generate_corpus",
    "generate_video",
    "interest",
    "main",
    "plan_faults",
    "run",
    "sample_style",
    "simulate_content",
    "simulate_recording",
    "video_id",
    "visual_columns",
    "write_feature_files",
]
