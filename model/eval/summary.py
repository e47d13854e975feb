"""What an evaluation gives a person to read: per task its metrics by name, beside the paper's
HumanOmni row, recomputed from lmms-eval's logged samples where they break down further
(multiple choice per category, the run's validation per branch)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from model.eval.labels import PAPER

# What each metric means, for the table's readers.
MEANING = {
    "uar": "mean recall over the classes (higher is better)",
    "war": "accuracy (higher is better)",
    "invalid_rate": "share of answers naming no class / option (counted wrong)",
    "release_uar": "UAR as the release computes it (classes from the answers)",
    "accuracy": "share of questions answered with the right option",
    "wer": "word error rate after Whisper's normalizer (lower is better)",
    "cider": "CIDEr-D against the reference captions",
    "rouge_l": "ROUGE-L F against the reference captions",
    "on_time": "share of events replied to within max(0, start)..end + 2 s",
    "missed": "share of events never replied to",
    "judge_correctness": "LLM-judged correctness against the reference, 0-5",
    "judge_detail": "LLM-judged detail, 0-5",
    "judge_context": "LLM-judged contextual fit, 0-5",
    "judge_temporal": "LLM-judged account of change over time, 0-5",
    "judge_failed": "share of judgements the judge could not give",
}


def latest_results(folder: Path) -> Path:
    """The newest `*_results.json` lmms-eval wrote under `folder`."""
    found = sorted(folder.rglob("*_results.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"lmms-eval wrote no results under {folder}")
    return found[-1]


def read_samples(results: Path, task: str) -> list[dict[str, Any]]:
    """The logged samples of one task from the same lmms-eval run as `results`."""
    stamp = results.name[: -len("_results.json")]
    path = results.parent / f"{stamp}_samples_{task}.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def breakdown(task: str, samples: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Accuracy per category (multiple choice), ROUGE-L per branch (the run's validation)."""
    from model.eval.tasks import utils

    groups: dict[str, list[dict]] = defaultdict(list)
    if task == "humanvbench":
        for s in samples:
            groups[s["accuracy"]["category"]].append(s["accuracy"])
        return {
            k: {"accuracy": utils.choice_accuracy(v), "samples": len(v)}
            for k, v in sorted(groups.items())
        }
    if task == "run_val":
        for s in samples:
            groups[s["rouge_l"]["group"]].append(s["rouge_l"])
        return {
            k: {"rouge_l": utils.caption_rouge_l(v), "samples": len(v)}
            for k, v in sorted(groups.items())
        }
    return {}


def summarize(results: Path, prepared: dict[str, dict[str, Any]], errors: Path | None) -> dict:
    data = json.loads(results.read_text())
    failed: dict[str, int] = defaultdict(int)
    if errors is not None and errors.is_file():
        for line in errors.read_text().splitlines():
            failed[json.loads(line)["task"]] += 1
    tasks = {}
    for task, values in sorted(data["results"].items()):
        metrics = {
            k.split(",")[0]: v
            for k, v in values.items()
            if "," in k and "_stderr" not in k and isinstance(v, int | float)
        }
        n = (data.get("n-samples") or {}).get(task, {}).get("effective")
        tasks[task] = {
            "metrics": metrics,
            "paper": PAPER.get(task, {}),
            "samples": n,
            "skipped": prepared.get(task, {}).get("skipped", 0),
            "unreadable": failed.get(task, 0),
            "by_group": breakdown(task, read_samples(results, task)),
        }
    seconds = float(data.get("total_evaluation_time_seconds") or 0)
    total = sum(t["samples"] or 0 for t in tasks.values())
    return {
        "results_file": str(results),
        "seconds": round(seconds, 1),
        "samples_per_s": round(total / seconds, 3) if seconds else None,
        "tasks": tasks,
    }


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def table(summary: dict) -> str:
    """The side-by-side table, as Markdown (readable as plain text too)."""
    lines = [
        "| task | metric | this model | HumanOmni (paper) | samples | skipped | unreadable |",
        "|---|---|---|---|---|---|---|",
    ]
    for task, row in summary["tasks"].items():
        for metric, value in row["metrics"].items():
            lines.append(
                f"| {task} | {metric} | {_fmt(value)} | {_fmt(row['paper'].get(metric))} | "
                f"{_fmt(row['samples'])} | {row['skipped']} | {row['unreadable']} |"
            )
        for group, values in row["by_group"].items():
            for metric, value in values.items():
                if metric != "samples":
                    lines.append(
                        f"| {task}: {group} | {metric} | {_fmt(value)} | - | {values['samples']} | | |"
                    )
    rate = summary.get("samples_per_s")
    shown = {m for row in summary["tasks"].values() for m in row["metrics"]}
    lines.append("")
    lines += [f"- {m}: {MEANING[m]}" for m in MEANING if m in shown]
    lines.append("")
    lines.append(f"{summary['seconds']} s of evaluation" + (f", {rate} samples/s" if rate else ""))
    return "\n".join(lines)
