"""The two experiments behind a claim of content gain, summarised from `dvc exp show -A`.

Seeds (``dvc exp run --queue -S seed=1 ...``) give the gain of the multimodal model over
the baseline as a mean and a spread; the shuffle control (``-S content_control=shuffle``)
pairs each video's track with another video's content, so a gain that comes from the
content must vanish there. This module reads every experiment's params and
``metrics/compare.json`` from ``dvc exp show --json`` and writes the Markdown section
that ``compare`` includes in ``plots/results.md``.

    trackfusion experiments --out plots/experiments.md
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
from pathlib import Path
from typing import Any, Iterator

from trackfusion.atomic import write_text
from trackfusion.learn import MODEL_KINDS

log = logging.getLogger(__name__)

COMPARE_METRICS = "metrics/compare.json"


def _record(node: dict[str, Any]) -> dict[str, Any] | None:
    data = node.get("data")
    if isinstance(data, dict) and "params" in data:
        return {"name": node.get("name") or node.get("rev", "")[:7], "rev": node.get("rev", ""), **data}
    return None


def _runs(exp_show: Any) -> Iterator[dict[str, Any]]:
    """The experiments in `dvc exp show --json -A` output, each with the commit it started from.

    Commits without experiments (older results of older code) are left out.
    """
    for commit in exp_show if isinstance(exp_show, list) else []:
        experiments = commit.get("experiments") or []
        if not experiments or commit.get("rev") == "workspace":
            continue
        base = _record(commit)
        if base:
            yield {**base, "base": True}
        for exp in experiments:
            for rev in exp.get("revs") or []:
                record = _record(rev)
                if record:
                    yield record


def collect(exp_show: Any) -> list[dict[str, Any]]:
    """One row per distinct run: its params and the cut F1 rows of its ``compare.json``.

    Runs whose compare.json has no ``cut_f1`` table were scored before cut events (older
    code, another scorer) and are left out: their figures are not comparable.
    """
    rows, seen = [], set()
    for run in _runs(exp_show):
        params = (run.get("params") or {}).get("params.yaml", {}).get("data", {})
        table = (run.get("metrics") or {}).get(COMPARE_METRICS, {}).get("data", {}).get("cut_f1") or {}
        key = (params.get("seed"), params.get("content_control"), params.get("fusion_type"), params.get("use_audio"),
               params.get("use_visual"))
        if not params or not all(m in table for m in MODEL_KINDS) or key in seen:  # a run reached twice counts once
            continue
        seen.add(key)
        figures = {m: table[m].get("cut_f1") for m in MODEL_KINDS}
        figures.update({f"{m}_rollout": table[m].get("rollout_cut_f1") for m in MODEL_KINDS})
        figures["content_rule"] = (table.get("content_rule") or {}).get("cut_f1")
        compare = (run.get("metrics") or {}).get(COMPARE_METRICS, {}).get("data", {})
        for key, section, row, figure in (("layout", "layout", "multimodal", "layout_accuracy"),
                                          ("layout_rule", "layout", "layout_rule", "layout_accuracy"),
                                          ("selection", "selection", "multimodal", "kept_f1")):  # fmt: skip
            figures[key] = ((compare.get(section) or {}).get(row) or {}).get(figure)  # None: scored before these
        model_layout = (compare.get("layout") or {}).get("multimodal") or {}
        figures["face_switch"] = (model_layout.get("switch_f1") or {}).get("V2")  # the face cam: a toggle
        if any(figures[k] is None for k in ("baseline", "multimodal")):
            continue
        rows.append({
            "base": run.get("base", False), "name": run["name"], "seed": params.get("seed"),
            "content_control": params.get("content_control", "none"),
            "fusion_type": params.get("fusion_type"), "use_audio": params.get("use_audio"),
            "use_visual": params.get("use_visual"), **figures,
            "difference": figures["multimodal"] - figures["baseline"],
        })
    return rows


def _spread(values: list[float], signed: bool = True) -> str:
    if not values:
        return "n/a"
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(mean)} +- {sd:.3f} (n={len(values)}, min {f.format(min(values))}, max {f.format(max(values))})"


def _config(r: dict[str, Any]) -> tuple:
    return (r["content_control"], r["fusion_type"], bool(r["use_audio"]), bool(r["use_visual"]))


def _fmt(value: float | None, signed: bool = False) -> str:
    return "n/a" if value is None else (f"{value:+.3f}" if signed else f"{value:.3f}")


def summarize(rows: list[dict[str, Any]]) -> str:
    """Markdown: each figure over seeds as mean and spread, with content and under the control,
    each configuration, and every run."""
    base = next((r for r in rows if r.get("base")), rows[0] if rows else None)
    ref = _config(base) if base else ("none", "gated", True, True)
    default = [r for r in rows if _config(r) == ref]
    control = [r for r in rows if _config(r) == ("shuffle",) + ref[1:]]
    figures = (("multimodal", "multimodal, teacher-forced"), ("multimodal_rollout", "multimodal, roll-out"),
               ("baseline", "track-only baseline, teacher-forced"), ("baseline_rollout", "baseline, roll-out"),
               ("content_rule", "content rule (reference)"), ("difference", "difference multimodal - baseline"),
               ("layout", "multimodal layout accuracy, roll-out"), ("layout_rule", "layout rule (reference)"),
               ("face_switch", "multimodal face-cam (V2) switch F1, roll-out"),
               ("selection", "selection model kept-frame F1"))
    lines = ["## Seeds and the shuffle control", "",
             "Test cut F1 (cut events, +-5 frames, whole videos), the rolled-out layout accuracy (over the kept "
             "frames) and the selection model's kept-frame F1, from `dvc exp show -A` "
             "(`trackfusion experiments` regenerates this section). Mean +- sd over runs:", "",
             f"| figure | content as recorded ({ref[1]} fusion) | shuffle control (another video's content) |",
             "|---|---|---|"]
    for key, label in figures:
        signed = key == "difference"
        if not any(r.get(key) is not None for r in default + control):
            continue  # scored before this figure existed
        lines.append(f"| {label} | {_spread([r[key] for r in default if r.get(key) is not None], signed)} | "
                     f"{_spread([r[key] for r in control if r.get(key) is not None], signed)} |")
    lines.append("")
    if default and control:
        gain, ctrl = statistics.fmean(r["difference"] for r in default), statistics.fmean(r["difference"] for r in control)
        verdict = "vanishes" if ctrl < gain / 2 else "does not vanish"
        lines += [f"The gain {verdict} under the control ({ctrl:+.3f} against {gain:+.3f}).", ""]
    configs = sorted({_config(r) for r in rows})
    if len(configs) > 2:
        lines += ["Each configuration (content_control, fusion_type, use_audio, use_visual):", "",
                  "| content_control | fusion_type | use_audio | use_visual | runs | multimodal cut_f1 | difference |",
                  "|---|---|---|---|---|---|---|"]
        for c in configs:
            group = [r for r in rows if _config(r) == c]
            multi = statistics.fmean(r["multimodal"] for r in group)
            lines.append(f"| {c[0]} | {c[1]} | {c[2]} | {c[3]} | {len(group)} | {multi:.3f} | "
                         f"{statistics.fmean(r['difference'] for r in group):+.3f} |")
        lines.append("")
    lines += ["Every run (teacher-forced / roll-out):", "",
              "| run | seed | content_control | fusion_type | use_audio | use_visual | baseline | multimodal | "
              "content rule | difference |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (_config(r), r["seed"] or 0)):
        lines.append(
            f"| {r['name']} | {r['seed']} | {r['content_control']} | {r['fusion_type']} | {r['use_audio']} | "
            f"{r['use_visual']} | {_fmt(r['baseline'])} / {_fmt(r.get('baseline_rollout'))} | "
            f"{_fmt(r['multimodal'])} / {_fmt(r.get('multimodal_rollout'))} | {_fmt(r.get('content_rule'))} | "
            f"{_fmt(r['difference'], signed=True)} |"
        )
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="plots/experiments.md", help="Markdown file to write")
    parser.add_argument("--json", help="read this `dvc exp show --json` output instead of running it")


def run(args: argparse.Namespace) -> int:
    if args.json:
        exp_show = json.loads(Path(args.json).read_text(encoding="utf-8"))
    else:
        # -A: experiments of every commit, not only of HEAD (they were queued from an earlier one)
        out = subprocess.run(["dvc", "exp", "show", "--json", "-A"], capture_output=True, text=True, check=True).stdout
        exp_show = json.loads(out)
    rows = collect(exp_show)
    write_text(args.out, summarize(rows))
    log.info("summarised %d runs into %s", len(rows), args.out)
    return 0
