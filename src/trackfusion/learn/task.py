"""What a model learns, apart from how the loop trains it.

A task owns everything the Trainer must not know: the batch keys its loss reads, the
loss, the per-frame metrics and the whole-video evaluation, the score that chooses the
best checkpoint, and the decoding it chooses for its model file. The Trainer runs any
task's loop; a second kind of output (a keep/drop per frame selection model) is a second
task class, not branches in the loop or the recipe.

``EditTask`` is the edit of a timeline: ``MultiTrackLoss``, ``EditMetrics``, cut events
over whole videos (``VideoLayoutCuts``), the checkpoint of the highest validation cut F1, and
the cut decoding (``cuts.CutDecoding``) tuned on the videos the recipe names.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import torch
from torch import nn

from trackfusion import cuts
from trackfusion.learn.loss import MultiTrackLoss
from trackfusion.learn.metrics import EditMetrics, VideoLayoutCuts


class FrameMetrics(Protocol):
    """Counts accumulated over a split's counted frames; ``counts`` is summed over ranks."""

    counts: dict[str, float]

    def compute(self) -> dict[str, Any]: ...


class VideoEvaluation(Protocol):
    """Evaluation windows stitched into whole videos; ``state`` is merged over ranks."""

    state: dict[int, Any]

    def add(self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]) -> None: ...

    def merge(self, states: list[dict[int, Any]]) -> None: ...


class Task(ABC):
    """The learning problem the Trainer optimises and scores (see the module doc)."""

    loss: nn.Module  # moved to the Trainer's device

    @abstractmethod
    def losses(self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor],
               counted: torch.Tensor) -> dict[str, torch.Tensor]:  # fmt: skip
        """``total`` (what is minimised) and the components logged beside it, over `counted` frames."""

    @abstractmethod
    def frame_metrics(self) -> FrameMetrics:
        """An empty per-frame metrics accumulator."""

    @abstractmethod
    def update_frame_metrics(self, metrics: FrameMetrics, outputs: Mapping[str, torch.Tensor],
                             batch: Mapping[str, torch.Tensor], counted: torch.Tensor) -> None:  # fmt: skip
        """Add one batch's counted frames to `metrics`."""

    @abstractmethod
    def video_evaluation(self) -> VideoEvaluation:
        """An empty whole-video evaluation (evaluation passes only)."""

    @abstractmethod
    def video_figures(self, evaluation: VideoEvaluation, decoding: Any | None) -> dict[str, Any]:
        """The evaluation's figures under `decoding`; None: under the decoding that scores best here."""

    @abstractmethod
    def selection_score(self, train: Mapping[str, Any], val: Mapping[str, Any]) -> float:
        """Lower is better: the epoch with the lowest finite score is the best checkpoint."""

    @abstractmethod
    def choose_decoding(self, evaluations: Iterable[VideoEvaluation]) -> Any:
        """The decoding stored with the model, chosen on these evaluations (never on test)."""


class EditTask(Task):
    """The timeline edit (see the module doc); `param_std` reports MAEs in the corpus' file units."""

    def __init__(self, loss: MultiTrackLoss, param_std: Mapping[str, Any] | None = None):
        self.loss = loss
        self.param_std = param_std

    def losses(self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor],
               counted: torch.Tensor) -> dict[str, torch.Tensor]:  # fmt: skip
        # targets, cuts included, are changes from the TRUE previous frame (the input may be corrupted)
        return self.loss(outputs, batch["targets"], counted, batch.get("prev_true", batch["prev_track"]),
                         batch.get("has_prev"))  # fmt: skip

    def frame_metrics(self) -> EditMetrics:
        return EditMetrics(param_std=self.param_std)

    def update_frame_metrics(self, metrics: EditMetrics, outputs: Mapping[str, torch.Tensor],
                             batch: Mapping[str, torch.Tensor], counted: torch.Tensor) -> None:  # fmt: skip
        metrics.update(outputs, batch["targets"], counted)

    def video_evaluation(self) -> VideoLayoutCuts:
        return VideoLayoutCuts()

    def video_figures(self, evaluation: VideoLayoutCuts, decoding: cuts.CutDecoding | None) -> dict[str, Any]:
        if not evaluation.state:
            return {}
        return evaluation.score(evaluation.tune() if decoding is None else decoding)

    def selection_score(self, train: Mapping[str, Any], val: Mapping[str, Any]) -> float:
        # what the project measures: validation cut F1 (higher is better, so its negative is
        # minimised), the validation loss where there are no cut figures, else the train loss
        select = -val["cut_f1"] if val.get("cut_f1") is not None else val.get("loss", math.nan)
        return select if math.isfinite(select) else train.get("loss", math.nan)

    def choose_decoding(self, evaluations: Iterable[VideoLayoutCuts]) -> cuts.CutDecoding:
        videos = [d for evaluation in evaluations for d in evaluation.videos().values()]
        if not videos:
            return cuts.CutDecoding()
        return cuts.CutDecoding.from_dict(
            cuts.tune_firing([d["prob"] for d in videos], [cuts.cut_events(d["true"]) for d in videos]))
