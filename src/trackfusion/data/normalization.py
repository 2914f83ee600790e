"""Feature normalisation: z-scores fitted on the train split only (SPEC section 5).

Each preprocessor z-scores its CONTINUOUS and COUNT columns, one column at a time
(a column's statistics never depend on another column's values, property 7), and
leaves BINARY and EVENT columns as they are. Statistics are accumulated video by video
(:meth:`partial_fit`, then :meth:`finalize`, or :meth:`fit` over an iterable), so
fitting streams over a corpus of any size. Only frames where the modality is
available count, so the zeros of unavailable frames never shift a mean.

- Visual: face fields are fitted on frames with a face only and are 0 where
  ``face_count`` is 0 after transform (and after inverse); CLIP is re-L2-normalised,
  never z-scored (a unit vector's direction is its information).
- Track: the continuous parameters (scale, x, y, crops) are fitted on active
  track-frames only, pooled over the 20 track slots per parameter (a slot used in
  one video in ten still gets sound statistics); inactive track-frames are exactly 0
  after transform; ``active`` and ``asset_id`` are never changed.

``inverse_transform(transform(x)) == x`` within float tolerance on available entries
(property 6). Statistics are saved as JSON (:func:`save_preprocessors`).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from trackfusion import schema
from trackfusion.data.embeddings import l2_normalize
from trackfusion.atomic import write_json
from trackfusion.schema import Kind

log = logging.getLogger(__name__)

#: a column whose train std is below this is constant: it is centred, not scaled (no /0)
STD_FLOOR = 1e-6
NORMALIZATION_FILE = "normalization.json"
FORMAT_VERSION = 1

_SCALAR_NAMES = schema.input_names(schema.VISUAL_SCALARS)
_FACE_COUNT = _SCALAR_NAMES.index(schema.FACE_COUNT)
_FACE = np.array([_SCALAR_NAMES.index(f) for f in schema.FACE_FIELDS])
_ACTIVE = schema.param_index("active")
_CONT_PARAMS = np.array([schema.param_index(p) for p in schema.TRACK_CONTINUOUS])


class _RunningStats:
    """Per-column count, mean and sum of squared deviations, merged batch by batch (Chan et al.)."""

    def __init__(self, width: int):
        self.count = np.zeros(width, np.float64)
        self.mean = np.zeros(width, np.float64)
        self.m2 = np.zeros(width, np.float64)

    def update(self, x: np.ndarray, valid: np.ndarray) -> None:
        """Add the entries of `x` (n, C) where `valid` (n, C) is True."""
        x = np.where(valid, x.astype(np.float64), 0.0)
        n_b = valid.sum(axis=0).astype(np.float64)  # (C,)
        if not n_b.any():
            return
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_b = np.where(n_b > 0, x.sum(axis=0) / n_b, 0.0)
        m2_b = (np.where(valid, x - mean_b, 0.0) ** 2).sum(axis=0)
        n = self.count + n_b
        delta = mean_b - self.mean
        with np.errstate(invalid="ignore", divide="ignore"):
            self.mean = np.where(n > 0, self.mean + delta * n_b / np.where(n > 0, n, 1), 0.0)
            self.m2 = self.m2 + m2_b + np.where(n > 0, delta**2 * self.count * n_b / np.where(n > 0, n, 1), 0.0)
        self.count = n

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        var = np.where(self.count > 0, self.m2 / np.maximum(self.count, 1), 0.0)
        std = np.sqrt(var)
        return np.where(self.count > 0, self.mean, 0.0), np.where(std > STD_FLOOR, std, 1.0)


class _ZScorer:
    """Shared machinery: which columns are z-scored, streaming fit, JSON state."""

    kind = ""

    def __init__(self, names: list[str], zscored: np.ndarray):
        self.names = list(names)
        self.zscored = np.asarray(zscored, dtype=bool)  # (C,) columns that are z-scored
        self._stats = _RunningStats(len(names))
        self.mean_: np.ndarray | None = None  # (C,) 0 for untouched columns
        self.std_: np.ndarray | None = None  # (C,) 1 for untouched columns
        self.count_: np.ndarray | None = None

    # --- fitting --------------------------------------------------------------------
    def _update(self, x: np.ndarray, valid: np.ndarray) -> None:
        self._stats.update(x, valid)

    def finalize(self) -> "_ZScorer":
        mean, std = self._stats.mean_std()
        self.mean_ = np.where(self.zscored, mean, 0.0)
        self.std_ = np.where(self.zscored, std, 1.0)
        self.count_ = self._stats.count.copy()
        empty = [n for n, z, c in zip(self.names, self.zscored, self.count_) if z and c == 0]
        if empty:
            log.warning(
                "%s normalisation: no train values for %d column(s) (%s%s); left unscaled (mean 0, std 1)",
                self.kind, len(empty), ", ".join(empty[:5]), "..." if len(empty) > 5 else "",
            )
        return self

    def fit(self, batches: Iterable[Any]) -> "_ZScorer":
        """Fit over an iterable of ``values`` or ``(values, mask)`` pairs, one video each."""
        for batch in batches:
            if isinstance(batch, tuple):
                self.partial_fit(*batch)
            else:
                self.partial_fit(batch)
        return self.finalize()

    def partial_fit(self, values: np.ndarray, mask: np.ndarray | None = None) -> "_ZScorer":
        raise NotImplementedError

    @property
    def fitted(self) -> bool:
        return self.mean_ is not None

    def _check_fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if self.mean_ is None or self.std_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() or partial_fit() and finalize()")
        return self.mean_.astype(np.float32), self.std_.astype(np.float32)

    # --- state ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "kind": self.kind,
            "columns": self.names,
            "zscored": [n for n, z in zip(self.names, self.zscored) if z],
            "mean": [float(v) for v in self.mean_],
            "std": [float(v) for v in self.std_],
            "count": [int(v) for v in self.count_],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "_ZScorer":
        obj = cls()
        if state.get("kind") != obj.kind or list(state.get("columns", [])) != obj.names:
            raise ValueError(
                f"normalisation state is for kind {state.get('kind')!r} with {len(state.get('columns', []))} "
                f"columns; expected {obj.kind!r} with columns {obj.names[:3]}... ({len(obj.names)})"
            )
        obj.mean_ = np.asarray(state["mean"], np.float64)
        obj.std_ = np.asarray(state["std"], np.float64)
        obj.count_ = np.asarray(state["count"], np.float64)
        return obj

    def save(self, path: str | Path) -> None:
        write_json(path, {"version": FORMAT_VERSION, **self.to_dict()})

    @classmethod
    def load(cls, path: str | Path) -> "_ZScorer":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _available(mask: np.ndarray | None, n: int) -> np.ndarray:
    if mask is None:
        return np.ones(n, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (n,):
        raise ValueError(f"mask must have shape ({n},), got {mask.shape}")
    return mask


def _check_width(values: np.ndarray, widths: tuple[int, ...], what: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[1] not in widths:
        raise ValueError(f"{what} values must have shape (T, {' or '.join(map(str, widths))}), got {values.shape}")
    return values


def _zscored_kinds(columns: tuple[schema.Column, ...]) -> np.ndarray:
    return np.array([c.kind in (Kind.CONTINUOUS, Kind.COUNT) for c in columns])


class AudioFeaturePreprocessor(_ZScorer):
    """z-scores energy and silence duration; speaking, text and speaker_turn stay 0/1."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__(schema.input_names(schema.AUDIO_INPUTS), _zscored_kinds(schema.AUDIO_INPUTS))

    def partial_fit(self, values: np.ndarray, mask: np.ndarray | None = None) -> "AudioFeaturePreprocessor":
        values = _check_width(values, (schema.AUDIO_WIDTH,), "audio")
        m = _available(mask, len(values))
        self._update(values[m], np.isfinite(values[m]))
        return self

    def transform(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        mean, std = self._check_fitted()
        values = _check_width(values, (schema.AUDIO_WIDTH,), "audio")
        out = ((values.astype(np.float32) - mean) / std).astype(np.float32)  # (T, 5); untouched: mean 0, std 1
        out[~_available(mask, len(values))] = 0.0
        return out

    def inverse_transform(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        mean, std = self._check_fitted()
        values = _check_width(values, (schema.AUDIO_WIDTH,), "audio")
        out = (values.astype(np.float32) * std + mean).astype(np.float32)
        out[~_available(mask, len(values))] = 0.0
        return out


class VisualFeaturePreprocessor(_ZScorer):
    """z-scores the ten visual scalars (face fields on frames with a face); CLIP is re-L2-normalised.

    ``values`` may be the ten scalars ``(T, 10)`` or all 522 visual inputs ``(T, 522)``.
    """

    kind = "visual"

    def __init__(self) -> None:
        super().__init__(_SCALAR_NAMES, _zscored_kinds(schema.VISUAL_SCALARS))

    def partial_fit(self, values: np.ndarray, mask: np.ndarray | None = None) -> "VisualFeaturePreprocessor":
        values = _check_width(values, (schema.VISUAL_SCALAR_WIDTH, schema.VISUAL_WIDTH), "visual")
        m = _available(mask, len(values))
        x = values[m, : schema.VISUAL_SCALAR_WIDTH]  # (n, 10)
        valid = np.isfinite(x)
        valid[:, _FACE] &= (x[:, _FACE_COUNT] != 0)[:, None]  # face fields describe a face: fit where one is seen
        self._update(x, valid)
        return self

    def transform(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        mean, std = self._check_fitted()
        values = _check_width(values, (schema.VISUAL_SCALAR_WIDTH, schema.VISUAL_WIDTH), "visual")
        x = values[:, : schema.VISUAL_SCALAR_WIDTH].astype(np.float32)
        out = np.empty(values.shape, np.float32)
        out[:, : schema.VISUAL_SCALAR_WIDTH] = (x - mean) / std
        out[:, _FACE] *= (x[:, _FACE_COUNT] != 0)[:, None]  # no face: face fields 0
        if values.shape[1] == schema.VISUAL_WIDTH:
            out[:, schema.VISUAL_SCALAR_WIDTH :] = self.transform_clip(values[:, schema.VISUAL_SCALAR_WIDTH :])
        out[~_available(mask, len(values))] = 0.0
        return out

    def inverse_transform(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        mean, std = self._check_fitted()
        values = _check_width(values, (schema.VISUAL_SCALAR_WIDTH, schema.VISUAL_WIDTH), "visual")
        out = values.astype(np.float32, copy=True)
        x = out[:, : schema.VISUAL_SCALAR_WIDTH]
        x[:] = x * std + mean
        # face_count is an integer count: a round trip lands within float error of it
        out[:, _FACE] *= (np.abs(x[:, _FACE_COUNT]) >= 0.5)[:, None]
        out[~_available(mask, len(values))] = 0.0
        return out

    def transform_clip(self, clip: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """CLIP rows re-L2-normalised (the aligned ones are unit length up to float16 rounding)."""
        out = l2_normalize(np.asarray(clip))
        if mask is not None:
            out[~_available(mask, len(out))] = 0
        return out


class TrackPreprocessor(_ZScorer):
    """z-scores scale, x, y and crops on active track-frames, pooled over the 20 slots per parameter."""

    kind = "track"

    def __init__(self) -> None:
        super().__init__(list(schema.TRACK_PARAMS), np.isin(np.arange(schema.NUM_TRACK_PARAMS), _CONT_PARAMS))

    @staticmethod
    def _split(track: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        track = _check_width(track, (schema.TRACK_WIDTH,), "track")
        per_track = track.reshape(len(track), schema.NUM_TRACKS, schema.NUM_TRACK_PARAMS)  # (T, 20, 9)
        return per_track, per_track[:, :, _ACTIVE] > 0.5  # (T, 20) active track-frames

    def partial_fit(self, values: np.ndarray, mask: np.ndarray | None = None) -> "TrackPreprocessor":
        per_track, active = self._split(values)
        m = _available(mask, len(values))
        x = per_track[m].reshape(-1, schema.NUM_TRACK_PARAMS)  # (n * 20, 9) one row per track-frame
        valid = np.zeros(x.shape, dtype=bool)
        valid[:, _CONT_PARAMS] = active[m].reshape(-1, 1) & np.isfinite(x[:, _CONT_PARAMS])
        self._update(x, valid)
        return self

    def transform(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        mean, std = self._check_fitted()
        per_track, active = self._split(values)
        out = per_track.astype(np.float32, copy=True)  # (T, 20, 9); active and asset_id copied unchanged
        cont = (per_track[:, :, _CONT_PARAMS] - mean[_CONT_PARAMS]) / std[_CONT_PARAMS]  # (T, 20, 7)
        out[:, :, _CONT_PARAMS] = np.where(active[:, :, None], cont, 0.0)  # inactive track-frames: exactly 0
        return out.reshape(len(values), schema.TRACK_WIDTH)

    def column_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(180,) float32 mean and std of every track column (0 and 1 where not z-scored):
        ``value * std + mean`` gives a normalised column in the file's units."""
        mean, std = self._check_fitted()
        return np.tile(mean, schema.NUM_TRACKS), np.tile(std, schema.NUM_TRACKS)

    def inverse_transform(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        mean, std = self._check_fitted()
        per_track, active = self._split(values)
        out = per_track.astype(np.float32, copy=True)
        cont = per_track[:, :, _CONT_PARAMS] * std[_CONT_PARAMS] + mean[_CONT_PARAMS]
        out[:, :, _CONT_PARAMS] = np.where(active[:, :, None], cont, 0.0)
        return out.reshape(len(values), schema.TRACK_WIDTH)


PREPROCESSORS: dict[str, type[_ZScorer]] = {
    "audio": AudioFeaturePreprocessor,
    "visual": VisualFeaturePreprocessor,
    "track": TrackPreprocessor,
}


def save_preprocessors(
    path: str | Path, audio: AudioFeaturePreprocessor, visual: VisualFeaturePreprocessor, track: TrackPreprocessor
) -> None:
    """All three preprocessors in one JSON file, written atomically."""
    write_json(
        path,
        {"version": FORMAT_VERSION, "std_floor": STD_FLOOR, "audio": audio.to_dict(), "visual": visual.to_dict(),
         "track": track.to_dict()},
    )


def load_preprocessors(
    path: str | Path,
) -> tuple[AudioFeaturePreprocessor, VisualFeaturePreprocessor, TrackPreprocessor]:
    path = Path(path)
    state = json.loads(path.read_text(encoding="utf-8"))
    if state.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: normalisation format version {state.get('version')}, expected {FORMAT_VERSION}")
    return (
        AudioFeaturePreprocessor.from_dict(state["audio"]),
        VisualFeaturePreprocessor.from_dict(state["visual"]),
        TrackPreprocessor.from_dict(state["track"]),
    )


def read_track_normalization(corpus_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(180,) mean and std of each track column of a corpus (`TrackPreprocessor.column_stats`);
    a corpus without ``normalization.json`` (the aligned one) is in the file's units: 0 and 1."""
    path = Path(corpus_dir) / NORMALIZATION_FILE
    if not path.exists():
        return np.zeros(schema.TRACK_WIDTH, np.float32), np.ones(schema.TRACK_WIDTH, np.float32)
    return load_preprocessors(path)[2].column_stats()


def read_track_std(corpus_dir: str | Path) -> np.ndarray:
    """(180,) std of each track column in the file's units (see `read_track_normalization`)."""
    return read_track_normalization(corpus_dir)[1]


def param_std(track_std: np.ndarray) -> dict[str, np.ndarray]:
    """(180,) per-column std -> {parameter: (20,) std per track}: what turns an error in
    z-scored units back into the file's units (`EditMetrics(param_std=...)`)."""
    std = np.asarray(track_std, dtype=np.float64)
    return {name: std[schema.track_columns(name)] for name in schema.TRACK_CONTINUOUS}
