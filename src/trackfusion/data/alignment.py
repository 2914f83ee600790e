"""Align feature samples to track frames (SPEC section 4).

Per video and modality, one ``np.searchsorted`` of the frame times into the sample
times gives every frame its left and right neighbouring samples; everything after
that is gathers and weights over whole arrays (all frames, all columns of a kind):

- a sample within ``tolerance`` of a frame is an exact match and is used as is;
- otherwise continuous columns are interpolated linearly between the neighbours,
  binary columns are forward-filled (last known value), counts take the nearest
  sample, events (``speaker_turn``) are 1 on the frame whose window holds an event
  sample, and CLIP vectors are interpolated linearly and L2-renormalised;
- a frame before the first sample, after the last or inside a gap longer than
  ``max_interp_gap_s`` gets no invented values: the modality is unavailable there
  (mask False, all its features 0);
- a missing sample of one column (NaN/inf) is bridged per column like a gap, from
  that column's neighbouring valid samples, else that column is 0 there; both counted;
- face fields are 0 where ``face_count`` is 0 (the mask stays True: no face is
  information).

Cost (SPEC section 10): the output is dominated by the CLIP block (T x 512 float16).
CLIP vectors are held between refreshes (about once a second), so runs of bitwise
identical rows are found in one pass, each run's vector is checked and L2-normalised
once, and every frame whose neighbours lie in one run gets its run's unit vector by a
row gather straight into the output; only frames between two different vectors are
interpolated. Scalars are worked column-major, (C, N) and (C, T), so gathers and scans
run along contiguous rows, and columns missing the same samples share one search.

Event windows: an event sample at time ``e`` is put on the first frame ``t_j`` with
``e <= t_j + tolerance``, i.e. frame ``j`` collects events in
``(t_{j-1} + tol, t_j + tol]``. This is SPEC's "since the previous frame" made robust
to float noise: an event sample stamped 1e-12 s after its frame lands on that frame,
consistently with the exact match of every other column.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from trackfusion import schema
from trackfusion.data.embeddings import normalise_rows_, single_torch_thread
from trackfusion.schema import Kind

log = logging.getLogger(__name__)

#: float slack on the tolerance and gap comparisons (times are float64 seconds)
_EPS = 1e-9
#: frames per block of the CLIP gather; 1024 x 512 float32 = 2 MB stays in cache
_CLIP_BLOCK = 1024
#: at most this many unavailable time ranges are listed in one log line
_MAX_RANGES_LOGGED = 10

_AUDIO_KINDS = np.array([c.kind.value for c in schema.AUDIO_INPUTS])
_VISUAL_KINDS = np.array([c.kind.value for c in schema.VISUAL_SCALARS])
_FACE_COUNT_IDX = schema.input_names(schema.VISUAL_SCALARS).index(schema.FACE_COUNT)
_FACE_IDX = np.array([schema.input_names(schema.VISUAL_SCALARS).index(n) for n in schema.FACE_FIELDS])


@dataclass
class AlignedFeatures:
    """One video's features on its track frames."""

    times: np.ndarray  # (T,) float64 frame times, strictly increasing
    audio: np.ndarray  # (T, 5) float32, schema.AUDIO_INPUTS order
    visual_scalars: np.ndarray  # (T, 10) float32, schema.VISUAL_SCALARS order
    clip: np.ndarray  # (T, 512) float16, unit length where available
    mask: np.ndarray  # (T, 3) bool [audio, visual, track]
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def visual(self) -> np.ndarray:
        """The 522 visual inputs ``(T, 522)`` float32: ten scalars, then CLIP."""
        out = np.empty((len(self.times), schema.VISUAL_WIDTH), np.float32)
        out[:, : schema.VISUAL_SCALAR_WIDTH] = self.visual_scalars
        # torch casts float16 -> float32 an order of magnitude faster than numpy
        with single_torch_thread():
            torch.from_numpy(out[:, schema.VISUAL_SCALAR_WIDTH :]).copy_(torch.from_numpy(self.clip))
        return out


@dataclass
class _Source:
    """A feature table reduced to what alignment needs."""

    times: np.ndarray  # (N,) float64 strictly increasing
    values: np.ndarray  # (N, W) float32, NaN = missing sample
    clip: np.ndarray | None  # (N, 512) float16 or None


def _from_dataframe(df: Any, modality: str) -> _Source:
    """Columns named as in :mod:`schema`; sorted by time, first of a duplicate time kept."""
    import pandas as pd

    if schema.TIME not in df.columns:
        raise ValueError(f"{modality} DataFrame has no '{schema.TIME}' column")
    df = df.sort_values(schema.TIME, kind="stable").drop_duplicates(schema.TIME, keep="first")
    if modality == "audio":
        names = schema.input_names(schema.AUDIO_INPUTS)
        if "speaker_turn" not in df.columns:
            if schema.SPEAKER_ID not in df.columns:
                raise ValueError("audio DataFrame needs 'speaker_turn' or 'speaker_id'")
            from trackfusion.io.features import speaker_turns  # the one definition of a turn, shared with the CSV reader

            df = df.assign(speaker_turn=speaker_turns(df[schema.SPEAKER_ID]))
        clip = None
    else:
        names = schema.input_names(schema.VISUAL_SCALARS)
        clip_names = schema.input_names(schema.CLIP_COLUMNS)
        missing = [n for n in clip_names if n not in df.columns]
        if missing:
            raise ValueError(f"visual DataFrame lacks columns {missing[:3]}...")
        clip = df[clip_names].to_numpy(np.float32).astype(np.float16)
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise ValueError(f"{modality} DataFrame lacks columns {missing}")
    values = df[names].apply(pd.to_numeric, errors="coerce").to_numpy(np.float32)
    return _Source(df[schema.TIME].to_numpy(np.float64), values, clip)


def _as_source(src: Any, modality: str) -> _Source | None:
    if src is None:
        return None
    if hasattr(src, "columns") and hasattr(src, "to_numpy"):  # a pandas DataFrame
        return _from_dataframe(src, modality)
    width = schema.AUDIO_WIDTH if modality == "audio" else schema.VISUAL_SCALAR_WIDTH
    times = np.asarray(src.times, dtype=np.float64)
    values = np.asarray(src.values, dtype=np.float32).reshape(len(times), width)  # (N, W)
    clip = getattr(src, "clip", None)
    if modality == "visual":
        if clip is None:
            raise ValueError("visual table has no CLIP columns")
        clip = np.asarray(clip, dtype=np.float16).reshape(len(times), schema.CLIP_DIM)  # (N, 512)
        if not clip.flags.writeable or not clip.flags.c_contiguous:  # torch reads it without a copy otherwise
            clip = np.ascontiguousarray(clip).copy()
    if len(times) > 1 and not np.all(np.diff(times) > 0):
        raise ValueError(f"{modality} sample times must be strictly increasing (sort and deduplicate first)")
    return _Source(times, values, clip)


@dataclass
class _Plan:
    """Per frame: the modality's neighbouring samples after the one sorted search."""

    left: np.ndarray  # (T,) sample to take / interpolate from (the nearest one when exact)
    right: np.ndarray  # (T,) sample to interpolate to (== left when exact)
    w: np.ndarray  # (T,) float64 weight of `right` (0 when exact)
    nearest: np.ndarray  # (T,) the nearer of left and right
    exact: np.ndarray  # (T,) bool, a sample within tolerance
    avail: np.ndarray  # (T,) bool, exact or bracketed by samples <= max gap apart


@dataclass
class _Bridges:
    """Entries (frame, column) whose neighbouring sample is missing in that column.

    Only these go through the per-column search; every other entry takes the
    modality's neighbours, so the usual case (few missing samples) costs row gathers.
    """

    frame: np.ndarray  # (E,) frame index
    col: np.ndarray  # (E,) column index
    lo: np.ndarray  # (E,) valid sample to take / interpolate from
    hi: np.ndarray  # (E,) valid sample to interpolate to
    w: np.ndarray  # (E,) float64 weight of hi
    nearest: np.ndarray  # (E,) nearest valid sample
    ok: np.ndarray  # (E,) bool, a value exists (else the column is 0 there)


def _neighbours(valid: np.ndarray, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column (row of `valid`, (G, N)): the last valid sample <= `left` (-1 if none) and
    the next valid one >= `right` (N if none), both (G, T). A running count of valid
    samples indexes the list of valid ones: a cumsum, cheaper than a max/min scan."""
    n = valid.shape[1]
    lv = np.empty((len(valid), len(left)), np.int64)  # (G, T)
    nv = np.empty((len(valid), len(right)), np.int64)
    for g, ok in enumerate(valid):  # a handful of distinct columns
        at = np.concatenate([[-1], np.flatnonzero(ok), [n]])  # (V + 2,) valid samples between sentinels
        count = np.cumsum(ok, dtype=np.int64)  # (N,) valid samples <= i
        np.take(at, count[left], out=lv[g])
        np.take(at, count[right] - ok[right] + 1, out=nv[g])
    return lv, nv


class FeatureAligner:
    """Align audio and visual feature tables to a video's track frame times."""

    def __init__(
        self,
        tolerance: float = 0.05,
        max_interp_gap_s: float = 1.0,
        warn_gap_s: float = 5.0,
        interp_warn_fraction: float = 0.5,
    ):
        if tolerance < 0 or max_interp_gap_s <= 0 or warn_gap_s <= 0:
            raise ValueError("tolerance must be >= 0, max_interp_gap_s and warn_gap_s > 0")
        self.tolerance = float(tolerance)
        self.max_interp_gap_s = float(max_interp_gap_s)
        self.warn_gap_s = float(warn_gap_s)
        self.interp_warn_fraction = float(interp_warn_fraction)
        #: gather held CLIP vectors (False: interpolate every frame; the reference the tests compare with)
        self._clip_fast_path = True

    @classmethod
    def from_params(cls, align: Any) -> "FeatureAligner":
        return cls(align.tolerance_s, align.max_interp_gap_s, align.warn_gap_s, align.interp_warn_fraction)

    # --- the public entry point ---------------------------------------------------
    def align_features(self, track_times: np.ndarray, audio: Any, visual: Any, video_id: str = "") -> AlignedFeatures:
        """Align `audio` and `visual` (FeatureTable, DataFrame or None) to `track_times`."""
        t = np.asarray(track_times, dtype=np.float64).reshape(-1)  # (T,)
        if len(t) > 1 and not np.all(np.diff(t) > 0):
            raise ValueError(f"video {video_id!r}: track frame times must be strictly increasing")
        n = len(t)
        a_src = _as_source(audio, "audio")
        v_src = _as_source(visual, "visual")
        mask = np.zeros((n, len(schema.MODALITIES)), dtype=bool)
        mask[:, 2] = True  # the track is there for every frame
        stats: dict[str, dict[str, Any]] = {}

        audio_out = np.zeros((n, schema.AUDIO_WIDTH), np.float32)
        if a_src is not None and len(a_src.times):
            plan = self._plan(a_src.times, t)
            mask[:, 0] = plan.avail
            stats["audio"] = self._scalars(a_src, t, plan, _AUDIO_KINDS, audio_out, face=False)
        else:
            stats["audio"] = _empty_stats(n)

        scal_out = np.zeros((n, schema.VISUAL_SCALAR_WIDTH), np.float32)
        if v_src is not None and len(v_src.times):
            clip_out = np.empty((n, schema.CLIP_DIM), np.float16)  # every row written by the gather
            plan = self._plan(v_src.times, t)
            mask[:, 1] = plan.avail
            stats["visual"] = self._scalars(v_src, t, plan, _VISUAL_KINDS, scal_out, face=True)
            stats["visual"]["clip"] = self._clip(v_src, t, plan, clip_out)
        else:
            clip_out = np.zeros((n, schema.CLIP_DIM), np.float16)
            stats["visual"] = _empty_stats(n)
        for name, src in (("audio", a_src), ("visual", v_src)):
            stats[name]["source"] = src is not None
        stats["track"] = {"frames": n, "exact": 1.0 if n else 0.0, "interpolated": 0.0, "unavailable": 0.0}

        for name, src, col in (("audio", a_src, 0), ("visual", v_src, 1)):
            if src is not None and len(src.times):
                self._report(video_id, name, t, mask[:, col], src.times, stats[name])
        return AlignedFeatures(t, audio_out, scal_out, clip_out, mask, stats)

    # --- frame level ----------------------------------------------------------------
    def _plan(self, s: np.ndarray, t: np.ndarray) -> _Plan:
        n = len(s)
        r = np.searchsorted(s, t, side="left")  # (T,) first sample >= t: the one sorted search
        lft = r - 1
        has_l, has_r = lft >= 0, r < n
        lc, rc = np.maximum(lft, 0), np.minimum(r, n - 1)  # (T,) in range (np.clip costs more on ints)
        t_l, t_r = s[lc], s[rc]
        d_l = np.where(has_l, t - t_l, np.inf)
        d_r = np.where(has_r, t_r - t, np.inf)
        near = np.where(d_l <= d_r, lc, rc)  # a tie goes to the earlier sample
        exact = np.minimum(d_l, d_r) <= self.tolerance + _EPS
        span = t_r - t_l
        avail = exact | (has_l & has_r & (span <= self.max_interp_gap_s + _EPS))
        interp = avail & ~exact
        w = np.where(interp, (t - t_l) / np.where(span > 0, span, 1.0), 0.0)
        left, right = np.where(exact, near, lc), np.where(exact, near, rc)
        return _Plan(left, right, w, near, exact, avail)

    def _bridges(
        self,
        s: np.ndarray,
        t: np.ndarray,
        plan: _Plan,
        valid: np.ndarray,
        only: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> _Bridges:
        """Resolve, per column, the available entries whose neighbouring samples are missing.

        `valid` is (C, N), one row per column. `only` = (columns, frames (T,) bool) limits
        the entries of those columns that need a value (face fields: frames with a face).
        """
        n = len(s)
        cols = np.flatnonzero(~valid.all(axis=1))  # (Cd,) columns with a missing sample
        if not len(cols) or not len(t):
            e = np.zeros(0, np.int64)
            return _Bridges(e, e, e, e, np.zeros(0), e, np.zeros(0, bool))
        # columns missing the same samples (and needing the same frames) share one search:
        # the face fields go missing together, and so do columns written by one extractor
        groups: dict[bytes, list[int]] = {}
        for c in cols:
            restricted = only is not None and c in only[0]
            groups.setdefault(np.packbits(valid[c]).tobytes() + bytes([restricted]), []).append(int(c))
        members = list(groups.values())  # (G,) lists of columns
        # (G, T) last valid sample at or before the left neighbour, next one at or after the right
        lv_all, nv_all = _neighbours(valid[[m[0] for m in members]], plan.left, plan.right)
        need = (lv_all != plan.left) | (nv_all != plan.right)  # (G, T)
        need &= plan.avail
        if only is not None:
            for g, m in enumerate(members):
                if m[0] in only[0]:
                    need[g] &= only[1]
        fg, fi = np.nonzero(need)  # (E,) (group, frame) entries to bridge, group-major
        lv, nv = lv_all[fg, fi], nv_all[fg, fi]
        has_lv, has_nv = lv >= 0, nv < n
        lvc, nvc = np.maximum(lv, 0), np.minimum(nv, n - 1)  # (E,) in range
        tl, tr = s[lvc], s[nvc]
        te = t[fi]
        d_l = np.where(has_lv, np.abs(te - tl), np.inf)
        d_r = np.where(has_nv, np.abs(tr - te), np.inf)
        nearest = np.where(d_l <= d_r, lvc, nvc)
        exact = np.minimum(d_l, d_r) <= self.tolerance + _EPS
        span = tr - tl
        bridge = ~exact & has_lv & has_nv & (span <= self.max_interp_gap_s + _EPS)
        w = np.where(bridge, (te - tl) / np.where(span > 0, span, 1.0), 0.0)
        lo = np.where(exact, nearest, lvc)
        hi = np.where(exact, nearest, nvc)
        ok = exact | bridge
        if all(len(m) == 1 for m in members):
            return _Bridges(fi, np.array([m[0] for m in members])[fg], lo, hi, w, nearest, ok)
        # one copy of each group's entries per member column
        ends = np.searchsorted(fg, np.arange(len(members)), side="right")  # (G,) end of each group's entries
        pick = np.concatenate(
            [np.arange(a, b) for a, b, m in zip([0, *ends[:-1]], ends, members) for _ in m]
        ).astype(np.int64)  # (E',) entry of each (column, frame)
        col = np.concatenate([np.full(b - a, c) for a, b, m in zip([0, *ends[:-1]], ends, members) for c in m])
        return _Bridges(fi[pick], col.astype(np.int64), lo[pick], hi[pick], w[pick], nearest[pick], ok[pick])

    def _scalars(
        self, src: _Source, t: np.ndarray, plan: _Plan, kinds: np.ndarray, out: np.ndarray, face: bool
    ) -> dict[str, Any]:
        """Fill `out` (T, C) with the scalar columns, grouped by kind; return the stats.

        Works column-major, (C, N) and (C, T): every gather, scan and reduction then
        runs along one contiguous row per column; `out` gets the transpose at the end.
        """
        s = src.times  # (N,)
        x = np.array(src.values.T, order="C")  # (C, N) a fresh copy, zeroed where invalid below
        finite = np.isfinite(x)  # (C, N)
        valid = finite
        n_normal_missing = 0
        if face:
            # face fields are empty where no face is seen: normal, not a missing sample;
            # they must not be interpolated towards a face-less sample either
            no_face = x[_FACE_COUNT_IDX] == 0  # (N,)
            valid = finite.copy()
            valid[_FACE_IDX] &= ~no_face
            n_normal_missing = int((~finite[_FACE_IDX] & no_face).sum())
        xz = x  # (C, N) invalid samples never reach a value; 0 keeps NaN * 0 out
        np.copyto(xz, np.float32(0), where=~valid)
        cont = kinds == Kind.CONTINUOUS.value
        count = kinds == Kind.COUNT.value
        event = kinds == Kind.EVENT.value
        # every column from the modality's neighbours, one gather per row (C, T):
        # binary (and events, overwritten below): left (the exact sample, else the last known);
        # continuous: lerp(left, right, w); count: nearest
        vals = np.take(xz, plan.left, axis=1)  # (C, T)
        if cont.any():
            rows = cont[:, None]  # (C, 1) the ufuncs below touch only the continuous rows
            step = np.take(xz, plan.right, axis=1)  # (C, T)
            np.subtract(step, vals, out=step, where=rows)
            np.multiply(step, plan.w.astype(np.float32), out=step, where=rows)
            np.add(vals, step, out=vals, where=rows)
        if count.any():
            vals[count] = np.take(xz[count], plan.nearest, axis=1)

        def bridge(br: _Bridges) -> None:  # entries whose neighbouring sample is missing in their column
            if len(br.frame):
                c = br.col
                x_lo = xz[c, br.lo]
                lerp = x_lo + (xz[c, br.hi] - x_lo) * br.w
                v = np.where(count[c], xz[c, br.nearest], np.where(cont[c], lerp, x_lo))
                vals[c, br.frame] = np.where(br.ok, v, 0.0)

        br_valid = valid.copy()
        br_valid[event] = True  # events go by windows, never bridged
        only = None
        bridges = []
        if face:
            # face_count first: face fields are only needed on frames with a face
            if not valid[_FACE_COUNT_IDX].all():
                bridges.append(self._bridges(s, t, plan, valid[_FACE_COUNT_IDX : _FACE_COUNT_IDX + 1]))
                bridges[-1].col[:] = _FACE_COUNT_IDX  # row 0 of the one-row view
                bridge(bridges[-1])
            has_face = (vals[_FACE_COUNT_IDX] != 0) & plan.avail  # (T,)
            br_valid[_FACE_COUNT_IDX] = True
            only = (_FACE_IDX, has_face)
        bridges.append(self._bridges(s, t, plan, br_valid, only))
        bridge(bridges[-1])
        vals *= plan.avail
        for c in np.flatnonzero(event):  # one event column (speaker_turn)
            vals[c] = self._events(s[finite[c] & (x[c] > 0.5)], t) * plan.avail
        if face:
            vals[_FACE_IDX] *= has_face  # no face: face fields 0 (the mask stays True)
        out[:] = vals.T
        bridged = sum(int(br.ok.sum()) for br in bridges)
        zero_filled = sum(int((~br.ok).sum()) for br in bridges)
        n = len(t)
        return {
            "frames": n,
            "exact": _frac(plan.exact & plan.avail, n),
            "interpolated": _frac(plan.avail & ~plan.exact, n),
            "unavailable": _frac(~plan.avail, n),
            "missing_samples": int((~finite).sum()) - n_normal_missing,
            "bridged_entries": bridged,
            "zero_filled_entries": zero_filled,
        }

    def _events(self, ev: np.ndarray, t: np.ndarray) -> np.ndarray:
        """1.0 on frame j when an event time falls in (t_{j-1} + tol, t_j + tol]."""
        out = np.zeros(len(t), np.float32)
        if not len(ev) or not len(t):
            return out
        first_dt = t[1] - t[0] if len(t) > 1 else 2 * self.tolerance
        ev = ev[ev > t[0] - first_dt + self.tolerance + _EPS]  # nothing from before the video's first window
        j = np.searchsorted(t, ev - self.tolerance - _EPS, side="left")  # (E,) first frame with e <= t_j + tol
        out[j[j < len(t)]] = 1.0
        return out

    def _clip(self, src: _Source, t: np.ndarray, plan: _Plan, out: np.ndarray) -> dict[str, Any]:
        """Fill `out` (T, 512) float16 with interpolated, L2-renormalised CLIP vectors.

        CLIP vectors are refreshed about once a second and held in between, so
        consecutive samples mostly carry the identical vector. One pass over the rows
        finds the runs of bitwise identical rows; each run's vector is checked (a NaN,
        inf or all-zero row is a missing sample) and L2-normalised once. A frame whose
        neighbouring samples (or exact match) lie in one run takes that run's unit
        vector: a row gather straight into `out`, exact because interpolating a vector
        with itself gives it back. Only frames between two different vectors are
        interpolated and renormalised.
        """
        with single_torch_thread():
            return self._clip_runs(src, t, plan, out)

    def _clip_runs(self, src: _Source, t: np.ndarray, plan: _Plan, out: np.ndarray) -> dict[str, Any]:
        clip = np.ascontiguousarray(src.clip)  # (N, 512) float16
        n = len(clip)
        # runs of identical rows, compared as 64-bit words (a row is 128 words)
        words = clip.view(np.uint64)  # (N, 128)
        new_run = np.empty(n, dtype=bool)  # (N,) row starts a run
        new_run[:1] = True
        np.any(words[1:] != words[:-1], axis=1, out=new_run[1:])
        starts = np.flatnonzero(new_run)  # (R,) first row of each run
        run = np.cumsum(new_run, dtype=np.int64) - 1  # (N,) run id of each row
        n_runs = len(starts)
        # unit[r] = run r's vector / its norm; row R stays zero for frames without a vector
        unit = np.empty((n_runs + 1, schema.CLIP_DIM), np.float16)  # (R + 1, 512)
        run_ok = np.zeros(n_runs + 1, dtype=bool)  # (R + 1,) a run's vector is a vector
        clip_t, unit_t = torch.from_numpy(clip), torch.from_numpy(unit)
        for i0 in range(0, n_runs, _CLIP_BLOCK):
            i1 = min(i0 + _CLIP_BLOCK, n_runs)
            u = torch.index_select(clip_t, 0, torch.from_numpy(starts[i0:i1])).float()  # (B, 512) float32
            run_ok[i0:i1] = normalise_rows_(u)
            unit_t[i0:i1].copy_(u)  # float32 -> float16
        unit[n_runs] = 0
        valid = run_ok[run]  # (N,) every row checked, once per run

        lo, hi, w, ok = plan.left.copy(), plan.right.copy(), plan.w.astype(np.float32), plan.avail.copy()
        br = self._bridges(src.times, t, plan, valid[None, :])
        lo[br.frame], hi[br.frame], w[br.frame], ok[br.frame] = br.lo, br.hi, br.w, br.ok
        run_lo = run[lo]  # (T,)
        if self._clip_fast_path:
            between = ok & (run_lo != run[hi])  # (T,) frames between two different vectors
        else:  # reference path (tests): every available frame interpolated and renormalised
            between = ok.copy()
        # every frame: its run's unit vector, or the zero row (unavailable / overwritten below)
        take = np.where(ok & ~between, run_lo, n_runs)  # (T,)
        out_t = torch.from_numpy(out)
        torch.index_select(unit_t, 0, torch.from_numpy(take), out=out_t)
        degenerate = 0  # frames whose interpolated vector has no direction (opposite neighbours)
        frames = np.flatnonzero(between)  # (K,)
        lo_t, hi_t, w_t = torch.from_numpy(lo), torch.from_numpy(hi), torch.from_numpy(w)
        for i0 in range(0, len(frames), _CLIP_BLOCK):  # blocks keep the float32 temporaries in cache
            f = torch.from_numpy(frames[i0 : i0 + _CLIP_BLOCK])  # (B,)
            # float32 arithmetic: float16 would lose the 1e-3 we keep (index_select: torch's [] gathers are slow)
            u = torch.index_select(clip_t, 0, torch.index_select(lo_t, 0, f)).float()  # (B, 512)
            v = torch.index_select(clip_t, 0, torch.index_select(hi_t, 0, f)).float()
            torch.lerp(u, v, torch.index_select(w_t, 0, f)[:, None], out=u)
            degenerate += int((~normalise_rows_(u)).sum())
            out_t.index_copy_(0, f, u.half())
        return {
            "missing_samples": int((~valid).sum()),
            "runs": n_runs,
            "interpolated_frames": len(frames),
            "bridged_entries": int(br.ok.sum()),
            "zero_filled_entries": int((~br.ok).sum()) + degenerate,
        }

    # --- logging ----------------------------------------------------------------------
    def _report(
        self, video_id: str, modality: str, t: np.ndarray, avail: np.ndarray, s: np.ndarray, st: dict[str, Any]
    ) -> None:
        log.info(
            "video %r: %s %.1f %% exact, %.1f %% interpolated, %.1f %% unavailable (%d frames)",
            video_id, modality, 100 * st["exact"], 100 * st["interpolated"], 100 * st["unavailable"], st["frames"],
        )
        if st["interpolated"] > self.interp_warn_fraction:
            log.warning(
                "video %r: %.1f %% of %s frames interpolated (more than %.0f %%)",
                video_id, 100 * st["interpolated"], modality, 100 * self.interp_warn_fraction,
            )
        ranges = _runs(~avail, t)
        st["unavailable_ranges"] = [[round(a, 3), round(b, 3)] for a, b in ranges[:_MAX_RANGES_LOGGED]]
        if ranges:
            shown = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in ranges[:_MAX_RANGES_LOGGED])
            more = f" and {len(ranges) - _MAX_RANGES_LOGGED} more" if len(ranges) > _MAX_RANGES_LOGGED else ""
            log.info("video %r: %s unavailable on %d time ranges: %s%s", video_id, modality, len(ranges), shown, more)
        # gaps between samples (and uncovered starts and ends) longer than warn_gap_s
        if len(t):
            edges = np.concatenate([[min(t[0], s[0])], s, [max(t[-1], s[-1])]])
            gap = np.diff(edges)
            big = np.flatnonzero(gap > self.warn_gap_s)
            st["gaps_over_warn"] = 0
            for k in big:
                a, b = edges[k], edges[k + 1]
                if b < t[0] or a > t[-1]:
                    continue
                st["gaps_over_warn"] += 1
                where = "before the first sample" if k == 0 else "after the last sample" if k == len(s) else "between samples"
                log.warning(
                    "video %r: %s gap of %.2f s from %.2f s to %.2f s (%s); no values there",
                    video_id, modality, b - a, a, b, where,
                )


def _runs(flags: np.ndarray, t: np.ndarray) -> list[tuple[float, float]]:
    """(first time, last time) of each run of True in `flags`."""
    if not flags.any():
        return []
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1
    return [(float(t[a]), float(t[b])) for a, b in zip(starts, ends)]


def _frac(flags: np.ndarray, n: int) -> float:
    return float(flags.sum()) / n if n else 0.0


def _empty_stats(n: int) -> dict[str, Any]:
    return {
        "frames": n,
        "exact": 0.0,
        "interpolated": 0.0,
        "unavailable": 1.0 if n else 0.0,
        "missing_samples": 0,
        "bridged_entries": 0,
        "zero_filled_entries": 0,
        "source": False,
    }
