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

Event windows: an event sample at time ``e`` is put on the first frame ``t_j`` with
``e <= t_j + tolerance``, i.e. frame ``j`` collects events in
``(t_{j-1} + tol, t_j + tol]``. This is SPEC's "since the previous frame" made robust
to float noise: an event sample stamped 1e-12 s after its frame lands on that frame,
consistently with the exact match of every other column.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch

from trackfusion import schema
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
            from trackfusion.io import speaker_turns  # the one definition of a turn, shared with the CSV reader

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


def _neighbours(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each sample row and column, the last valid row <= it (-1) and the next >= it (N)."""
    n = len(valid)
    idx = np.arange(n, dtype=np.int32 if n < 2**31 - 1 else np.int64)[:, None]  # int32 halves the traffic
    last = np.maximum.accumulate(np.where(valid, idx, -1), axis=0)  # (N, C)
    nxt = np.minimum.accumulate(np.where(valid[::-1], idx[::-1], n), axis=0)[::-1]  # (N, C)
    return last, nxt


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
        clip_out = np.zeros((n, schema.CLIP_DIM), np.float16)
        if v_src is not None and len(v_src.times):
            plan = self._plan(v_src.times, t)
            mask[:, 1] = plan.avail
            stats["visual"] = self._scalars(v_src, t, plan, _VISUAL_KINDS, scal_out, face=True)
            stats["visual"]["clip"] = self._clip(v_src, t, plan, clip_out)
        else:
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
        lc, rc = np.clip(lft, 0, n - 1), np.clip(r, 0, n - 1)
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
        self, s: np.ndarray, t: np.ndarray, plan: _Plan, valid: np.ndarray, allowed: np.ndarray | None = None
    ) -> _Bridges:
        """Resolve, per column, the available entries whose neighbouring samples are missing.

        `allowed` (T, C) limits the entries that need a value (face fields: frames with a face).
        """
        n = len(s)
        cols = np.flatnonzero(~valid.all(axis=0))
        if not len(cols) or not len(t):
            e = np.zeros(0, np.int64)
            return _Bridges(e, e, e, e, np.zeros(0), e, np.zeros(0, bool))
        last, nxt = _neighbours(valid[:, cols])  # (N, Cd) over the columns with missing samples
        lv_all = last[plan.left]  # (T, Cd) last valid sample at or before the left neighbour
        nv_all = nxt[plan.right]  # (T, Cd) next valid sample at or after the right neighbour
        need = ((lv_all != plan.left[:, None]) | (nv_all != plan.right[:, None])) & plan.avail[:, None]
        if allowed is not None:
            need &= allowed[:, cols]
        fi, fc = np.nonzero(need)  # (E,) entries to bridge
        lv, nv = lv_all[fi, fc], nv_all[fi, fc]
        has_lv, has_nv = lv >= 0, nv < n
        tl, tr = s[np.clip(lv, 0, n - 1)], s[np.clip(nv, 0, n - 1)]
        te = t[fi]
        d_l = np.where(has_lv, np.abs(te - tl), np.inf)
        d_r = np.where(has_nv, np.abs(tr - te), np.inf)
        nearest = np.where(d_l <= d_r, lv, nv)
        exact = np.minimum(d_l, d_r) <= self.tolerance + _EPS
        span = tr - tl
        bridge = ~exact & has_lv & has_nv & (span <= self.max_interp_gap_s + _EPS)
        w = np.where(bridge, (te - tl) / np.where(span > 0, span, 1.0), 0.0)
        nearest = np.clip(nearest, 0, n - 1)
        lo = np.where(exact, nearest, np.clip(lv, 0, n - 1))
        hi = np.where(exact, nearest, np.clip(nv, 0, n - 1))
        return _Bridges(fi, cols[fc], lo, hi, w, nearest, exact | bridge)

    def _scalars(
        self, src: _Source, t: np.ndarray, plan: _Plan, kinds: np.ndarray, out: np.ndarray, face: bool
    ) -> dict[str, Any]:
        """Fill `out` (T, C) with the scalar columns, grouped by kind; return the stats."""
        s, x = src.times, src.values  # (N,), (N, C)
        finite = np.isfinite(x)
        valid = finite.copy()
        normal_missing = np.zeros_like(finite)
        if face:
            # face fields are empty where no face is seen: normal, not a missing sample;
            # they must not be interpolated towards a face-less sample either
            no_face = (x[:, _FACE_COUNT_IDX] == 0)[:, None]
            normal_missing[:, _FACE_IDX] = no_face
            valid[:, _FACE_IDX] &= ~no_face
        xz = np.where(valid, x, np.float32(0))  # (N, C) invalid samples never reach a value; 0 keeps NaN * 0 out
        cont = kinds == Kind.CONTINUOUS.value
        count = kinds == Kind.COUNT.value
        event = kinds == Kind.EVENT.value
        binary = kinds == Kind.BINARY.value
        # every column from the modality's neighbours, one row gather per kind group (T, C):
        # continuous: lerp(left, right, w); binary: left (the exact sample, else the last known); count: nearest
        vals = np.zeros((len(t), x.shape[1]), np.float32)
        if cont.any():
            xc = xz[:, cont]
            x_l = xc[plan.left]
            vals[:, cont] = x_l + (xc[plan.right] - x_l) * plan.w[:, None].astype(np.float32)
        if binary.any():
            vals[:, binary] = xz[:, binary][plan.left]
        if count.any():
            vals[:, count] = xz[:, count][plan.nearest]

        def bridge(br: _Bridges) -> None:  # entries whose neighbouring sample is missing in their column
            if len(br.frame):
                c = br.col
                x_lo = xz[br.lo, c]
                lerp = x_lo + (xz[br.hi, c] - x_lo) * br.w
                v = np.where(count[c], xz[br.nearest, c], np.where(cont[c], lerp, x_lo))
                vals[br.frame, c] = np.where(br.ok, v, 0.0)

        br_valid = valid.copy()
        br_valid[:, event] = True  # events go by windows, never bridged
        allowed = None
        bridges = []
        if face:
            # face_count first: face fields are only needed on frames with a face
            if not valid[:, _FACE_COUNT_IDX].all():
                bridges.append(self._bridges(s, t, plan, valid[:, [_FACE_COUNT_IDX]]))
                bridges[-1].col[:] = _FACE_COUNT_IDX  # column 0 of the one-column view
                bridge(bridges[-1])
            has_face = (vals[:, _FACE_COUNT_IDX] != 0) & plan.avail
            br_valid[:, _FACE_COUNT_IDX] = True
            allowed = np.ones(vals.shape, dtype=bool)
            allowed[:, _FACE_IDX] = has_face[:, None]
        bridges.append(self._bridges(s, t, plan, br_valid, allowed))
        bridge(bridges[-1])
        vals *= plan.avail[:, None]
        for c in np.flatnonzero(event):  # one event column (speaker_turn)
            vals[:, c] = self._events(s[finite[:, c] & (x[:, c] > 0.5)], t) * plan.avail
        if face:
            vals[:, _FACE_IDX] *= has_face[:, None]  # no face: face fields 0 (the mask stays True)
        out[:] = vals
        bridged = sum(int(br.ok.sum()) for br in bridges)
        zero_filled = sum(int((~br.ok).sum()) for br in bridges)
        n = len(t)
        return {
            "frames": n,
            "exact": _frac(plan.exact & plan.avail, n),
            "interpolated": _frac(plan.avail & ~plan.exact, n),
            "unavailable": _frac(~plan.avail, n),
            "missing_samples": int((~finite & ~normal_missing).sum()),
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

    def _clip(self, src: _Source, t: np.ndarray, plan: _Plan, out: np.ndarray) -> dict[str, int]:
        """Fill `out` (T, 512) float16 with interpolated, L2-renormalised CLIP vectors.

        A NaN, inf or all-zero row is a missing sample. Rows are assumed valid first
        (checking all N x 512 values would cost as much as the alignment itself); the
        norm of every row used is computed anyway, so a bad one is caught there and the
        video is redone once with every row checked.
        """
        with single_torch_thread():
            return self._clip_rows(src, t, plan, out)

    def _clip_rows(self, src: _Source, t: np.ndarray, plan: _Plan, out: np.ndarray) -> dict[str, Any]:
        clip = torch.from_numpy(src.clip)  # (N, 512) float16
        valid = np.isfinite(src.clip[:, 0])  # cheap first guess: a whole row is usually empty or not
        counts = self._clip_pass(clip, src.times, t, plan, valid, out, final=False)
        checked = counts is None
        if counts is None:  # a bad row was used: check every row, then redo
            norms = np.empty(len(clip), np.float32)
            for i0 in range(0, len(clip), _CLIP_BLOCK):
                rows = clip[i0 : i0 + _CLIP_BLOCK].float()  # (B, 512)
                norms[i0 : i0 + len(rows)] = torch.linalg.vector_norm(rows, dim=1).numpy()
            valid = np.isfinite(norms) & (norms > 0)
            counts = self._clip_pass(clip, src.times, t, plan, valid, out, final=True)
        # without the full check, only rows whose first value is empty are known to be missing
        return {"missing_samples": int((~valid).sum()), "rows_checked": checked, **counts}

    def _clip_pass(
        self,
        clip: torch.Tensor,
        s: np.ndarray,
        t: np.ndarray,
        plan: _Plan,
        valid: np.ndarray,
        out: np.ndarray,
        final: bool,
    ) -> dict[str, int] | None:
        """One pass over the frames; None if a row assumed valid was not (unless `final`)."""
        lo, hi, w, ok = plan.left.copy(), plan.right.copy(), plan.w.astype(np.float32), plan.avail.copy()
        br = self._bridges(s, t, plan, valid[:, None])
        lo[br.frame], hi[br.frame], w[br.frame], ok[br.frame] = br.lo, br.hi, br.w, br.ok
        lo_t, hi_t, w_t = torch.from_numpy(lo), torch.from_numpy(hi), torch.from_numpy(w)[:, None]  # w_t (T, 1)
        out_t = torch.from_numpy(out)
        n_blk = min(_CLIP_BLOCK, len(t))
        b16 = torch.empty((n_blk, schema.CLIP_DIM), dtype=torch.float16)
        u = torch.empty((n_blk, schema.CLIP_DIM), dtype=torch.float32)
        v = torch.empty((n_blk, schema.CLIP_DIM), dtype=torch.float32)
        nrm = torch.empty((n_blk, 1), dtype=torch.float32)
        pair = ok & (w > 0)
        degenerate = 0  # frames whose interpolated vector has no direction (opposite neighbours)
        for i0 in range(0, len(t), _CLIP_BLOCK):  # blocks of frames keep the temporaries in cache
            i1 = min(i0 + _CLIP_BLOCK, len(t))
            m = i1 - i0
            torch.index_select(clip, 0, lo_t[i0:i1], out=b16[:m])  # (B, 512) float16 gather
            u[:m].copy_(b16[:m])  # float32 arithmetic: float16 would lose the 1e-3 we keep
            if pair[i0:i1].any():  # interpolated frames in this block: lerp towards the right sample
                torch.index_select(clip, 0, hi_t[i0:i1], out=b16[:m])
                v[:m].copy_(b16[:m])
                torch.lerp(u[:m], v[:m], w_t[i0:i1], out=u[:m])  # w = 0 leaves single-sample frames as they are
            torch.linalg.vector_norm(u[:m], dim=1, keepdim=True, out=nrm[:m])  # (B, 1)
            good = torch.isfinite(nrm[:m, 0]) & (nrm[:m, 0] > 0)
            if not bool(good.all()):
                bad = (~good).numpy() & ok[i0:i1]
                if bad.any() and not final:
                    return None
                degenerate += int(bad.sum())
                nrm[:m][~good] = 1.0
                u[:m][~good] = 0.0
            u[:m].div_(nrm[:m])
            out_t[i0:i1].copy_(u[:m])  # float32 -> float16
        if not ok.all():
            out[~ok] = 0
        return {"bridged_entries": int(br.ok.sum()), "zero_filled_entries": int((~br.ok).sum()) + degenerate}

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


@contextlib.contextmanager
def single_torch_thread() -> Iterator[None]:
    """Run the CLIP gathers on one thread.

    They are memory-bound, so a second thread buys little; and on shared or busy cores
    every parallel region waits for a descheduled thread (measured: 15 ms per block op
    with two threads under load against 0.2 ms with one).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
