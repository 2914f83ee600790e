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
    """(name, seed, content_control, fusion_type, cut_f1 baseline/multimodal/difference) per distinct run."""
    rows, seen = [], set()
    for run in _runs(exp_show):
        params = (run.get("params") or {}).get("params.yaml", {}).get("data", {})
        compare = (run.get("metrics") or {}).get(COMPARE_METRICS, {}).get("data", {})
        cut = compare.get("test", {}).get("cut_f1")
        key = (params.get("seed"), params.get("content_control"), params.get("fusion_type"), params.get("use_audio"),
               params.get("use_visual"))
        if not params or not cut or key in seen:  # the same run reached from two commits counts once (newest)
            continue
        seen.add(key)
        rows.append({
            "base": run.get("base", False), "name": run["name"], "seed": params.get("seed"),
            "content_control": params.get("content_control", "none"),
            "fusion_type": params.get("fusion_type"), "use_audio": params.get("use_audio"),
            "use_visual": params.get("use_visual"), "baseline": cut["baseline"], "multimodal": cut["multimodal"],
            "difference": cut["difference"],
        })
    return rows


def _spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:+.3f} +- {sd:.3f} (n={len(values)}, min {min(values):+.3f}, max {max(values):+.3f})"


def _config(r: dict[str, Any]) -> tuple:
    return (r["content_control"], r["fusion_type"], bool(r["use_audio"]), bool(r["use_visual"]))


def summarize(rows: list[dict[str, Any]]) -> str:
    """Markdown: the seeds' gain as mean and spread, the control's, each configuration's, and every run."""
    base = next((r for r in rows if r.get("base")), rows[0] if rows else None)
    ref = _config(base) if base else ("none", "gated", True, True)
    default = [r for r in rows if _config(r) == ref]
    control = [r for r in rows if _config(r) == ("shuffle",) + ref[1:]]
    lines = ["## Seeds and the shuffle control", "",
             "Test cut F1 difference (multimodal - baseline), from `dvc exp show -A` "
             "(`trackfusion experiments` regenerates this section):", "",
             f"- content as recorded ({ref[1]} fusion), over seeds: {_spread([r['difference'] for r in default])}",
             f"- shuffle control (each track paired with another video's content): "
             f"{_spread([r['difference'] for r in control])}", ""]
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
    lines += ["Every run:", "",
              "| run | seed | content_control | fusion_type | use_audio | use_visual | baseline cut_f1 | "
              "multimodal cut_f1 | difference |", "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (_config(r), r["seed"] or 0)):
        lines.append(f"| {r['name']} | {r['seed']} | {r['content_control']} | {r['fusion_type']} | {r['use_audio']} | "
                     f"{r['use_visual']} | {r['baseline']:.3f} | {r['multimodal']:.3f} | {r['difference']:+.3f} |")
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
