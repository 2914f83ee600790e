"""The comparison of the track-only baseline and the multimodal model, beside the references.

Reads both models' test metrics, their roll-out figures, the reference predictors
(``trackfusion.experiment.references``) and the DVCLive curves, and writes ``metrics/compare.json``
(the cut F1 table of every predictor, and each metric for both models with the
difference), PNG pictures (the offline view of the results: ``dvc plots show`` renders
with Vega from a CDN) and ``plots/results.md``, whose first table reads each model's cut
F1 beside chance, a trivial predictor, a simple rule and the ceiling, all scored by
``cuts.CutScore`` on the same test videos.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import platform
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen on CI or servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from trackfusion import layouts, schema  # noqa: E402
from trackfusion.atomic import atomic_path, write_text  # noqa: E402
from trackfusion.intervals import TABLES, all_intervals, per_video_figures  # noqa: E402
from trackfusion.learn import MODEL_KINDS  # noqa: E402
from trackfusion.results import write_figures  # noqa: E402

log = logging.getLogger(__name__)

#: metric -> True when higher is better; cut_f1 first: it is the figure that shows whether content helps
METRICS: dict[str, bool] = {
    "cut_f1": True,
    "active_f1": True,
    "asset_accuracy": True,
    "scale_mae": False,
    "position_mae": False,
    "crop_mae": False,
    "loss": False,
}
LOSS_COMPONENTS = ("active", "asset", "scale", "position", "crop", "cut")
ROLLOUT_METRICS = ("cut_f1", "layout_accuracy", "active_f1", "asset_accuracy")
#: the model every interval table reads the references against (its rows in all three tables)
INTERVAL_MODEL = "multimodal"
#: rows of the cut F1 table, in reading order: references around the two models
REFERENCE_ORDER = ("never", "random", "periodic", "content_rule", "ceiling")
CHANCE_NOTE = (
    "Chance is not 0: under +-5-frame matching at about one cut per 40 frames, cuts drawn at random at the true "
    "rate already score about 0.23, and a content-free periodic cutter more."
)


def cut_table(
    references: dict[str, dict[str, Any]] | None,
    tests: dict[str, dict[str, float]],
    rollout: dict[str, dict[str, float]] | None,
) -> dict[str, dict[str, Any]]:
    """Every predictor's cut F1 on the test videos: the references (open loop, so one
    figure) and both models teacher-forced and rolled out."""
    rows: dict[str, dict[str, Any]] = {}
    refs = references or {}
    for name in [n for n in REFERENCE_ORDER if n in refs] + [n for n in refs if n not in REFERENCE_ORDER]:
        r = refs[name]
        rows[name] = {"kind": "reference", "cut_f1": r.get("cut_f1"), "rollout_cut_f1": r.get("cut_f1"),
                      "cut_precision": r.get("cut_precision"), "cut_recall": r.get("cut_recall"),
                      "pred_cuts": r.get("pred_cuts"), "true_cuts": r.get("true_cuts"), "how": r.get("how", "")}
    for model in MODEL_KINDS:
        t, ro = tests.get(model, {}), (rollout or {}).get(model, {})
        rows[model] = {"kind": "model", "cut_f1": t.get("cut_f1"), "rollout_cut_f1": ro.get("cut_f1"),
                       "cut_precision": t.get("cut_precision"), "cut_recall": t.get("cut_recall"),
                       "pred_cuts": t.get("pred_cuts"), "true_cuts": t.get("true_cuts"),
                       "rollout_pred_cuts": ro.get("pred_cuts"),
                       "how": "track only" if model == "baseline" else "audio + visual + track"}
    return rows


def _num(v: Any, fmt: str = "{:.3f}") -> str:
    return "" if v is None else fmt.format(v) if isinstance(v, float) else str(v)


def cut_table_markdown(rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| predictor | cut F1 teacher-forced | cut F1 roll-out | precision | recall | predicted cuts | how |",
             "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        label = f"**{name}**" if r["kind"] == "model" else name
        ro = "(open loop)" if r["kind"] == "reference" else _num(r["rollout_cut_f1"])
        pred = _num(r["pred_cuts"], "{:.0f}")
        lines.append(f"| {label} | {_num(r['cut_f1'])} | {ro} | {_num(r['cut_precision'])} | "
                     f"{_num(r['cut_recall'])} | {pred} | {r['how']} |")
    true = next((r["true_cuts"] for r in rows.values() if r.get("true_cuts")), None)
    if true:
        lines += ["", f"{true:.0f} true cut events on the test videos; each prediction is matched one-to-one within "
                      "+-5 frames over whole videos. " + CHANCE_NOTE]
    return lines


#: rows of the selection table, in reading order: references around the model
SELECTION_ORDER = ("keep_all", "random", "loudness_rule", "content_rule", "multimodal", "ceiling_at_length", "ceiling")
SELECTION_FIGURES = ("kept_f1", "precision", "recall", "boundary_f1", "duration_error_s")


def selection_rows(selection: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The select stage's table in reading order, each row its five figures and how it was made."""
    table = (selection or {}).get("selection", {})
    names = [n for n in SELECTION_ORDER if n in table] + [n for n in table if n not in SELECTION_ORDER]
    return {n: {**{f: table[n].get(f) for f in SELECTION_FIGURES}, "how": table[n].get("how", "the selection model")}
            for n in names}


def selection_markdown(selection: dict[str, Any]) -> list[str]:
    rows = selection_rows(selection)
    if not rows:
        return []
    lines = ["## What the edit keeps: selection on the test videos", "",
             "| predictor | kept-frame F1 | precision | recall | jump-cut boundary F1 | duration error (s) | how |",
             "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        label = f"**{name}**" if name in MODEL_KINDS else name
        lines.append(f"| {label} | " + " | ".join(_num(r[f]) for f in SELECTION_FIGURES) + f" | {r['how']} |")
    lines += [""] + selection_verdict(rows)
    ratio = selection.get("at_default_ratio", {})
    lines += ["", f"Every predictor is decoded to each video's true edit length on {selection.get('videos')} test "
                  "videos ({} frames), so it is read on which frames it keeps; boundaries are matched one-to-one "
                  "within +-1 s.".format(selection.get("frames"))]
    if ratio:
        cells = ", ".join(f"{n} {ratio[n]['kept_f1']:.3f}" for n in SELECTION_ORDER if n in ratio)
        lines.append(f"At the default ratio ({ratio.get('target_ratio')} of each recording) kept-frame F1 is: {cells}.")
    return lines + [""]


def selection_verdict(rows: dict[str, dict[str, Any]]) -> list[str]:
    """The selection claim, against the rows it needs; a rule that wins is the model's shortfall."""
    model = next((n for n in rows if n in MODEL_KINDS), None)
    if model is None or rows[model].get("kept_f1") is None:
        return []
    f1 = rows[model]["kept_f1"]
    out = [f"The selection model keeps the editor's frames with kept-frame F1 **{f1:.3f}**"]
    out += [f"{'; ' if i else ': '}{f1 - rows[ref]['kept_f1']:+.3f} against {word} ({rows[ref]['kept_f1']:.3f})"
            for i, (ref, word) in enumerate((r for r in (("random", "random stretches"),
                                                         ("loudness_rule", "the loudness rule"),
                                                         ("content_rule", "the content rule"),
                                                         ("ceiling_at_length",
                                                          "the noiseless editor asked for the same length"),
                                                         ("ceiling", "the ceiling")) if r[0] in rows))]
    text = "".join(out) + "."
    best_rule = max((rows[r]["kept_f1"] for r in ("loudness_rule", "content_rule") if r in rows), default=None)
    if best_rule is not None and best_rule > f1:
        text += (" A rule a user could write keeps the editor's frames better than the model: that is the "
                 "model's shortfall, not the score's.")
    return [text, ""]


#: rows of the layout table, in reading order: references around the two models (rolled out)
LAYOUT_ORDER = ("hold", "train_median", "layout_rule", *MODEL_KINDS, "layout_ceiling")
LAYOUT_TRACKS = 5  # per-track agreement shown for the tracks of the contract's layout (schema.TRACK_ASSETS)


def layout_rows(references: dict[str, Any] | None, predicted: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Every layout predictor's ``LayoutScore`` figures on the test videos: the references
    (metrics/references.json's ``layout``) and both models rolled out (predict's ``layout``)."""
    table = dict((references or {}).get("layout", {}))
    for model in MODEL_KINDS:
        if (predicted or {}).get(model, {}).get("layout"):
            table[model] = {**predicted[model]["layout"], "how": f"{model} model, rolled out"}
    names = [n for n in LAYOUT_ORDER if n in table] + [n for n in table if n not in LAYOUT_ORDER]
    rows = {n: {**{f: table[n].get(f) for f in (*layouts.FIGURES, "per_track", "per_track_switch_f1")},
                "how": table[n].get("how", "")}
            for n in names}
    for r in rows.values():  # by track name too: `dvc exp show` drops lists, not dicts of numbers
        r["switch_f1"] = {f"V{t + 1}": v for t, v in enumerate((r["per_track_switch_f1"] or [])[:LAYOUT_TRACKS])}
    return rows


def layout_markdown(rows: dict[str, dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    tracks = [f"V{t + 1}" for t in range(LAYOUT_TRACKS)]
    lines = ["## What the edit shows: the layout rolled out on the test videos (over the kept frames)", "",
             "| predictor | layout accuracy | " + " | ".join(f"{t} agreement" for t in tracks) +
             " | " + " / ".join(tracks) + " switch F1 | active F1 | asset accuracy | scale MAE (%) | position MAE (px) |"
             " crop MAE (%) | how |",
             "|---|---|" + "---|" * LAYOUT_TRACKS + "---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        label = f"**{name}**" if name in MODEL_KINDS else name
        per = (r.get("per_track") or [None] * LAYOUT_TRACKS)[:LAYOUT_TRACKS]
        switches = (r.get("per_track_switch_f1") or [None] * LAYOUT_TRACKS)[:LAYOUT_TRACKS]
        cells = [_num(r["layout_accuracy"]), *(_num(v) for v in per), " / ".join(_num(v) or "-" for v in switches),
                 _num(r["active_f1"]), _num(r["asset_accuracy"]),
                 *(_num(r[f], "{:.2f}") for f in ("scale_mae", "position_mae", "crop_mae"))]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {r['how']} |")
    lines += ["", "Every row is given the edit's first frame and scored by `trackfusion.layouts.LayoutScore` on the same "
                  "frames in the files' units: layout accuracy counts frames whose every track's active flag and asset "
                  "are the editor's; a track's agreement, frames where that track's are; its switch F1, its switches "
                  "matched one-to-one with the editor's within +-5 frames (a toggle such as the face cam is wrong from a "
                  "missed switch until the next: agreement counts those frames, switch F1 the error); asset accuracy and the "
                  "placement errors count track-frames that both show."]
    return lines + [""]


def intervals_markdown(intervals: dict[str, Any], model: str) -> list[str]:
    """How sure each table's claims are (``intervals.all_intervals``), one table row per reference."""
    if not intervals:
        return []
    first = next(iter(intervals.values()))
    lines = ["## How sure: the model against each reference, the test videos drawn again", "",
             f"Each test video is drawn again with replacement ({first['draws']:,} draws, the same draws for every "
             f"predictor of a table, so a difference is paired); the interval is the central "
             f"{first['level']:.0%} of the draws. With ten test videos a gap of a few hundredths may be one "
             "video's luck: read a target against the interval, not the figure alone. Cut F1 is the models' rolled "
             "out (the references are open loop).", "",
             f"| table | figure | videos | {model} | reference | reference's figure | {model} less reference | "
             f"P({model} >= reference) |", "|---|---|---|---|---|---|---|---|"]
    for table, iv in intervals.items():
        m = iv["rows"].get(model)
        if m is None:
            continue
        own = f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"
        for ref, d in iv["model_less"].items():
            r = iv["rows"][ref]
            lines.append(f"| {table} | {iv['figure']} | {iv['videos']} | {own} | {ref} | "
                         f"{r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}] | "
                         f"{d['value']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] | {d['p_at_least']:.2f} |")
    return lines + [""]


#: what a table's per-video weight counts
WEIGHTS = {"layout": "frames", "selection": "kept frames", "cuts": "true cuts"}


def per_video_markdown(counts: dict[str, Any], model: str) -> list[str]:
    """Each test video's own figure per row, the model first: where a pooled gap comes from (a toggle
    left wrong in one long video moves the pooled layout accuracy by a tenth)."""
    lines: list[str] = []
    for table in TABLES:
        rows = counts.get(table) or {}
        if model not in rows:
            continue
        order = [model, *(r for r in rows if r != model)]
        videos = per_video_figures(table, rows)
        lines += [f"### {table}: {TABLES[table][0]} per test video", "",
                  f"| video | {WEIGHTS[table]} | " + " | ".join(f"**{r}**" if r == model else r for r in order) + " |",
                  "|---|---|" + "---|" * len(order)]
        for vid, v in videos.items():
            cells = " | ".join(_num(v["figures"][r]) for r in order)
            lines.append(f"| {vid} | {v['weight']:.0f} | {cells} |")
        lines.append("")
    if lines:
        lines = ["## Where the gaps lie: each test video's own figure", "",
                 "The pooled figures above weigh each video by what it holds (its frames, its kept frames, its true "
                 "cuts); a row that is level with another on most videos and far below it on one long video "
                 "has a gap that one video makes.", ""] + lines
    return lines


def verdict(rows: dict[str, dict[str, Any]]) -> list[str]:
    """The claim, stated only against the rows it needs."""
    m, b = rows.get("multimodal", {}), rows.get("baseline", {})
    if m.get("cut_f1") is None or b.get("cut_f1") is None:
        return []
    out = [f"The multimodal model's test cut F1 is **{m['cut_f1']:.3f}** teacher-forced and "
           f"**{_num(m.get('rollout_cut_f1'))}** rolled out, against the track-only baseline's "
           f"**{b['cut_f1']:.3f}** / **{_num(b.get('rollout_cut_f1'))}** ({m['cut_f1'] - b['cut_f1']:+.3f} teacher-forced)."]
    for ref, word in (("periodic", "a content-free periodic cutter"), ("content_rule", "the content rule"),
                      ("ceiling", "the ceiling")):
        r = rows.get(ref)
        if r and r.get("cut_f1") is not None:
            out.append(f"Against {word} ({r['cut_f1']:.3f}): multimodal {m['cut_f1'] - r['cut_f1']:+.3f}, "
                       f"baseline {b['cut_f1'] - r['cut_f1']:+.3f} (teacher-forced).")
    rule = rows.get("content_rule") or {}
    if rule.get("cut_f1") is not None and rule["cut_f1"] > m["cut_f1"]:
        out.append("A rule a user could write beats the multimodal model here: that is the model's shortfall "
                   "(what it learned from the content is no more than the rule encodes), not the score's.")
    return [" ".join(out)]
ASSET_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd")


def split_figures(metrics_json: dict[str, Any], split: str = "test") -> dict[str, float]:
    """The numeric figures of one split in a training stage's metrics file (None, not measured, left out)."""
    figures = metrics_json.get(split, metrics_json)
    return {k: float(v) for k, v in figures.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def compare_metrics(baseline: dict[str, float], multimodal: dict[str, float]) -> dict[str, dict[str, float]]:
    """Each metric both models report, with the difference multimodal - baseline."""
    out = {}
    order = list(METRICS) + list(LOSS_COMPONENTS)
    for name in sorted(set(baseline) & set(multimodal), key=lambda n: (order.index(n) if n in order else len(order), n)):
        out[name] = {
            "baseline": baseline[name],
            "multimodal": multimodal[name],
            "difference": multimodal[name] - baseline[name],
        }
    return out


def read_curve(live_dir: Path, split: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one DVCLive metric, empty if it was not logged."""
    path = Path(live_dir) / "plots" / "metrics" / split / f"{name}.tsv"
    if not path.exists():
        return np.zeros(0), np.zeros(0)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return np.array([float(r["step"]) for r in rows]), np.array([float(r[name]) for r in rows])


def _save(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_curves(live_dirs: dict[str, Path], out_png: Path) -> None:
    """Loss and validation cut F1 per epoch, both models side by side."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for model, live in live_dirs.items():
        for split, style in (("train", "--"), ("val", "-")):
            x, y = read_curve(live, split, "loss")
            axes[0 if model == "baseline" else 1].plot(x + 1, y, style, marker="o", label=f"{split}")
        x, y = read_curve(live, "val", "cut_f1")
        axes[2].plot(x + 1, y, marker="o", label=model)
    for ax, title in zip(axes, ("baseline loss", "multimodal loss", "validation cut F1")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    if axes[0].get_ylim() and axes[1].get_ylim():
        lo = min(axes[0].get_ylim()[0], axes[1].get_ylim()[0])
        hi = max(axes[0].get_ylim()[1], axes[1].get_ylim()[1])
        axes[0].set_ylim(lo, hi)
        axes[1].set_ylim(lo, hi)
    _save(fig, out_png)


def plot_components(tests: dict[str, dict[str, float]], out_png: Path) -> None:
    """Per-component test loss and the edit metrics, bars for both models."""
    groups = (("test loss component", LOSS_COMPONENTS, "loss_"), ("edit metric", tuple(METRICS)[:-1], ""))
    fig, axes = plt.subplots(1, 2, figsize=(14, 4))
    width = 0.38
    for ax, (title, names, prefix) in zip(axes, groups):
        keys = [f"{prefix}{n}" if f"{prefix}{n}" in tests[MODEL_KINDS[0]] else n for n in names]
        x = np.arange(len(keys))
        for i, model in enumerate(MODEL_KINDS):
            values = [tests[model].get(k, np.nan) for k in keys]
            ax.bar(x + (i - 0.5) * width, values, width, label=model)
        ax.set_xticks(x, names, rotation=20)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        ax.legend()
    _save(fig, out_png)


def draw_timeline(ax: plt.Axes, frames: np.ndarray, fps: float, title: str, tracks: list[int]) -> None:
    """An editor's view of (T, 180) frames: tracks as rows, time across, assets as colours."""
    active = frames[:, schema.track_columns("active")] > 0.5  # (T, 20)
    asset = np.rint(frames[:, schema.track_columns("asset_id")]).astype(int).clip(0, schema.NUM_ASSET_CLASSES - 1)
    for row, t in enumerate(tracks):
        state = np.where(active[:, t], asset[:, t], -1)  # (T,) -1 = empty
        change = np.flatnonzero(np.diff(state)) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(state)]])
        for s, e in zip(starts, ends):
            if state[s] >= 0:
                ax.broken_barh([(s / fps, (e - s) / fps)], (row - 0.4, 0.8), color=ASSET_COLOURS[state[s]])
    ax.set_yticks(range(len(tracks)), [f"V{t + 1}" for t in tracks])
    ax.set_ylim(len(tracks) - 0.5, -0.5)  # V1 on top, as in an editor
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(axis="x", alpha=0.3)


def plot_timelines(examples: list[tuple[np.ndarray, dict[str, np.ndarray], float, str]], out_png: Path) -> None:
    """For each example video, its true timeline above each predictor's, on one time axis per video."""
    every = np.concatenate([f for truth, preds, _, _ in examples for f in (truth, *preds.values())])
    tracks = [t for t in range(schema.NUM_TRACKS) if (every[:, t * schema.NUM_TRACK_PARAMS] > 0.5).any()] or [0]
    panels = []
    for truth, preds, fps, vid in examples:
        panels += [(f"true edit: {vid}", truth, fps)] + [(name, frames, fps) for name, frames in preds.items()]
    fig, axes = plt.subplots(len(panels), 1, figsize=(14, 1.2 + 0.45 * len(tracks) * len(panels)), squeeze=False)
    for ax, (title, frames, fps) in zip(axes[:, 0], panels):
        draw_timeline(ax, frames, fps, title, tracks)
    axes[-1, 0].set_xlabel("time in the edit (s)")
    names = [schema.ASSET_CLASSES[i] if i < len(schema.ASSET_CLASSES) else f"asset {i}"
             for i in range(schema.NUM_ASSET_CLASSES)]
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ASSET_COLOURS]
    fig.legend(handles, names, loc="lower center", ncol=len(handles), fontsize=8, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    _save(fig, out_png)


def _fmt(v: float) -> str:
    return f"{v:+.4f}" if abs(v) < 100 else f"{v:+.1f}"


def results_markdown(
    table: dict[str, dict[str, float]],
    runs: dict[str, dict[str, Any]],
    rollout: dict[str, dict[str, float]] | None,
    pictures: list[str],
    experiments: str | None,
    cuts_rows: dict[str, dict[str, Any]] | None = None,
    selection: dict[str, Any] | None = None,
    layout: dict[str, dict[str, Any]] | None = None,
    intervals: dict[str, Any] | None = None,
    counts: dict[str, Any] | None = None,
) -> str:
    lines = ["# Results: does the content help predict the edit?", ""]
    if selection:
        lines += selection_markdown(selection)
    if cuts_rows:
        lines += verdict(cuts_rows) + ["", "## Cut F1 of every predictor on the test videos (over the kept frames, "
                                       "in edit order)", ""]
        lines += cut_table_markdown(cuts_rows) + [""]
    if layout:
        lines += layout_markdown(layout)
    if intervals:
        lines += intervals_markdown(intervals, INTERVAL_MODEL)
    if counts:
        lines += per_video_markdown(counts, INTERVAL_MODEL)
    lines += ["## Test metrics (teacher-forced, best-val checkpoint)", "",
              "| metric | better | baseline | multimodal | difference |", "|---|---|---|---|---|"]
    for name, row in table.items():
        better = "higher" if METRICS.get(name) else "lower" if name in METRICS or name in LOSS_COMPONENTS else ""
        label = f"loss: {name}" if name in LOSS_COMPONENTS else name
        lines.append(f"| {label} | {better} | {row['baseline']:.4f} | {row['multimodal']:.4f} | {_fmt(row['difference'])} |")
    if rollout:
        lines += ["", "## Roll-out (the model's own previous frame as input, no true frame after the first)", "",
                  "| metric | baseline teacher-forced | baseline roll-out | multimodal teacher-forced | multimodal roll-out |",
                  "|---|---|---|---|---|"]
        for name in ROLLOUT_METRICS:
            cells = []
            for model in MODEL_KINDS:
                cells += [table.get(name, {}).get(model, float("nan")), rollout.get(model, {}).get(name, float("nan"))]
            lines.append(f"| {name} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")
    lines += ["", "## Runs", "", "| | " + " | ".join(MODEL_KINDS) + " |", "|---|---|---|"]
    keys = sorted({k for r in runs.values() for k, v in r.items() if isinstance(v, (int, float, str))})
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
        return str(v)

    for k in keys:
        lines.append(f"| {k} | " + " | ".join(cell(runs[m].get(k, "")) for m in MODEL_KINDS) + " |")
    lines += ["", "Wall time, frames/s, peak memory and the device are this machine's, not results: they go to "
              "`runs/` (git-ignored), and the compare stage writes them as a table to `runs/results.md`."]
    if experiments:
        lines += ["", experiments.strip()]
    lines += ["", "## Pictures", ""] + [f"![{Path(p).stem}]({p})" for p in pictures] + [""]
    return "\n".join(lines)


def run_facts_markdown(facts: dict[str, dict[str, Any]]) -> str:
    """Each stage's last run on this machine, as a table (timings are facts of a run, not figures)."""
    lines = [f"# Run facts on this machine ({platform.node() or 'unnamed'}, {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} CPUs)", "", "Not results: they change from run to run. The figures are in "
             "`plots/results.md`.", "", "| stage | what | value |", "|---|---|---|"]
    for stage, values in facts.items():
        for name, value in _flatten(values):
            lines.append(f"| {stage} | {name} | {value:,.1f} |" if isinstance(value, float) else f"| {stage} | {name} | {value} |")
    return "\n".join(lines) + "\n"


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in values.items():
        out += _flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else [(f"{prefix}{k}", v)]
    return out


def run_compare(
    metrics_paths: dict[str, Path],
    live_dirs: dict[str, Path],
    out_dir: Path,
    results_md: Path,
    compare_json: Path,
    timelines: list[tuple[np.ndarray, dict[str, np.ndarray], float, str]] | None = None,
    rollout: dict[str, dict[str, float]] | None = None,
    experiments_md: Path | None = None,
    references: dict[str, Any] | None = None,
    run_facts: dict[str, dict[str, Any]] | None = None,
    run_facts_md: Path | None = None,
    selection: dict[str, Any] | None = None,
    predicted: dict[str, Any] | None = None,
    counts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write compare.json, the pictures and results.md; return the comparison table.

    `predicted` (the predict stage's metrics) gives each model's rolled-out ``layout`` figures;
    `counts` (the scoring stages' per-video counts, ``intervals.read_counts``) the ``intervals``:
    how far the test videos tell the multimodal model from each reference.
    `run_facts` (each stage's `runs/<stage>.json` on this machine) go to `run_facts_md`, not
    to results.md: timings change from run to run and machine to machine, figures do not.
    """
    raw = {m: json.loads(Path(metrics_paths[m]).read_text(encoding="utf-8")) for m in MODEL_KINDS}
    tests = {m: split_figures(raw[m]) for m in MODEL_KINDS}
    table = compare_metrics(tests["baseline"], tests["multimodal"])
    runs = {m: raw[m].get("run", {}) for m in MODEL_KINDS}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pictures = []
    plot_curves(live_dirs, out_dir / "curves.png")
    plot_components(tests, out_dir / "components.png")
    pictures += ["curves.png", "components.png"]
    if timelines:
        plot_timelines(timelines, out_dir / "timeline.png")
        pictures.append("timeline.png")
    rel = [str(Path(out_dir.name) / p) if results_md.parent == out_dir.parent else str(out_dir / p) for p in pictures]
    experiments = experiments_md.read_text(encoding="utf-8") if experiments_md and experiments_md.exists() else None
    rows = cut_table((references or {}).get("references"), tests, rollout)
    layout = layout_rows(references, predicted)
    intervals = all_intervals(counts or {}, INTERVAL_MODEL)
    write_text(results_md, results_markdown(table, runs, rollout, rel, experiments, rows, selection, layout,
                                            intervals, counts))
    if run_facts_md is not None:
        write_text(run_facts_md, run_facts_markdown(run_facts or {}))
    payload: dict[str, Any] = {"cut_f1": {k: {f: v for f, v in r.items() if f != "how"} for k, r in rows.items()},
                               "test": table}
    if rollout:
        payload["rollout"] = rollout
    if selection:
        payload["selection"] = {k: {f: v for f, v in r.items() if f != "how"} for k, r in selection_rows(selection).items()}
    if layout:
        payload["layout"] = {k: {f: v for f, v in r.items() if f != "how"} for k, r in layout.items()}
    if intervals:
        payload["intervals"] = intervals
    write_figures(compare_json, payload)
    if "cut_f1" in table:
        log.info("test cut_f1: baseline %.4f, multimodal %.4f (difference %+.4f)",
                 table["cut_f1"]["baseline"], table["cut_f1"]["multimodal"], table["cut_f1"]["difference"])
    return table
