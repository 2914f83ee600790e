"""What an editor of the synthetic corpus is: a recording and random streams of its own in,
a timeline out.

An editor owns its streams (:class:`EditorStreams`), so the draws it makes, however
many, move neither the content nor any other editor. By default they are fresh streams
keyed by the editor's ``tag``; today's editor (``event_editor.EventEditor``) overrides
:meth:`Editor.streams` to keep drawing where it always drew, so the default corpus stays
byte-identical (see the package docstring).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from trackfusion.data.synthetic.content import Recording


@dataclass(frozen=True)
class EditorStreams:
    """The random streams one editor draws from for one video."""

    timeline: np.random.Generator  # the real timeline (its noise, its habits)
    noiseless: np.random.Generator  # the timeline without noise, the ceiling's
    selection: np.random.Generator | None = None  # what it keeps (an editor that removes frames)


@dataclass(frozen=True)
class EditorOutput:
    """One video as an editor made it."""

    timeline: np.ndarray  # (T, 180) float32 track frames, the ground truth the models learn
    noiseless: np.ndarray  # (T, 180) the same editor's decisions without its noise: its cuts are the ceiling
    kept: np.ndarray | None = None  # (T,) bool, the frames the edit plays; None: every frame
    noiseless_kept: np.ndarray | None = None  # (T,) bool, what it keeps without its noise: the selection ceiling
    # (T,) bool, the same noiseless decisions asked for the real edit's length, the target every predictor is given
    noiseless_kept_at_length: np.ndarray | None = None


class Editor(ABC):
    """Turns one simulated recording into its timeline."""

    #: the key of its fresh streams, ``[seed, video index, tag]``: unique per editor, >= 3
    #: (``[seed, i, 1]`` and ``[seed, i, 2]`` are the faults' and today's ceiling's)
    tag: ClassVar[int]

    def streams(self, seed: int, index: int, recording_rng: np.random.Generator) -> EditorStreams:
        """Streams of its own for video ``index``, independent of ``recording_rng`` (which it leaves untouched)."""
        timeline, noiseless = np.random.SeedSequence([seed, index, self.tag]).spawn(2)
        return EditorStreams(np.random.default_rng(timeline), np.random.default_rng(noiseless))

    @abstractmethod
    def edit(self, recording: Recording, streams: EditorStreams, kept: np.ndarray | None = None) -> EditorOutput:
        """The video's timeline and its noiseless twin, drawn from ``streams`` alone; ``kept`` (T,) bool:
        lay out only the frames an edit plays (what an editor that removes has kept), None: every frame."""
