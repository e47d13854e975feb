"""`make instructions`: per-branch instruction pairs on a curated run, and the exports.

A job of the same runners as the pipeline: one stage per branch (curation/instructions/
stage.py) over the shards of the run's `structured/` folder, resumable shard by shard, with
the LLM questions on any backend. Then the exports, written by a worker: the HumanOmni
training format under `exports/`, `<branch>.json` for every branch built so far and
`mixed.json` with all of them, streamed sample by sample. Statistics per branch go to
run.json (`instructions`) beside the paper's figures. Virtual clips (cut.mode virtual) have
no file a trainer could read: they get instructions but are left out of the exports, and
counted.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from itertools import groupby
from pathlib import PurePosixPath
from typing import Any

from curation.annotate.exports import PAPER as PEOPLE_PAPER
from curation.annotate.exports import human_labels, human_pairs, keep_machine_pair
from curation.engine.config import PipelineConfig
from curation.engine.runners import Runner
from curation.engine.shard_task import Step
from curation.engine.totals import StageTotals, Totals
from curation.instructions.exports import JsonListWriter, audio_text_sample, sample
from curation.instructions.generate import BRANCHES
from curation.instructions.split import val_sources
from curation.rundir import RunDir
from stages import registry
from stages.instructions import InstructionsStage

log = logging.getLogger(__name__)

# The paper's output (section 3): eligible share of 2.4M clips, and pairs per eligible clip.
PAPER = {
    "face": {"eligible_share": round(1.78 / 2.4, 3), "pairs_per_clip": round(4.12 / 1.78, 2)},
    "body": {"eligible_share": round(2.21 / 2.4, 3), "pairs_per_clip": round(5.75 / 2.21, 2)},
    "interaction": {"eligible_share": 1.0, "pairs_per_clip": 2.0},
    # Its human-labelled set holds 20K speaker-specific speech annotations (no share given).
    "speech": {"pairs": 20_000},
}
SOURCE_FOLDER = registry.folders()["structure"]
SPLITS = {"train": "", "val": "val/"}  # where each split's exports go, under exports/


class InstructionsError(RuntimeError):
    """The run cannot get instructions yet (no finished structure stage)."""


def check_ready(run: RunDir) -> None:
    state = run.read_run_json()
    status = ((state or {}).get("stages") or {}).get("structure", {}).get("status")
    if status != "done":
        raise InstructionsError(
            f"{run.location}: the structure stage has not finished (status {status or 'absent'}); "
            "run `make curate` with the same RUN first"
        )


def instruction_steps(config: PipelineConfig, branches: list[str]) -> list[Step]:
    return [
        Step(InstructionsStage(branch=b, cfg=config.instructions), SOURCE_FOLDER) for b in branches
    ]


def branch_stats(branch: str, t: StageTotals) -> dict[str, Any]:
    eligible = int(t.extra.get("eligible_clips", 0))
    return {
        "clips": t.rows_in,
        "eligible_clips": eligible,
        "eligible_share": round(eligible / t.rows_in, 3) if t.rows_in else 0.0,
        "pairs": t.rows_out,
        "pairs_per_clip": round(t.rows_out / eligible, 2) if eligible else 0.0,
        "kinds": dict(sorted(t.extra.get("kinds", {}).items())),
        "closed_answer_letters": dict(sorted(t.extra.get("closed_answer_letters", {}).items())),
        "llm_failed_clips": int(t.extra.get("llm_failed_clips", 0)),
        "llm_ungrounded_pairs": int(t.extra.get("llm_ungrounded_pairs", 0)),
        # Clips the fields made eligible that the boxes ruled out (no face / no person seen),
        # or, for speech, that the signals did (no transcript, not one face, not in sync).
        (
            "removed_by_signals"
            if branch in InstructionsStage.signal_branches
            else "removed_by_boxes"
        ): {
            k.removeprefix("removed_"): int(v)
            for k, v in sorted(t.extra.items())
            if k.startswith("removed_")
        },
        "shards": t.shards,
        "paper": PAPER[branch],
    }


def clip_sources(run: RunDir) -> dict[str, str]:
    """clip_id -> source_id of the run's kept clips (the structured folder)."""
    out: dict[str, str] = {}
    for unit in sorted(run.units(SOURCE_FOLDER)):
        table = run.read_unit(SOURCE_FOLDER, unit, ["clip_id", "source_id", "kept"])
        out.update((r["clip_id"], r["source_id"]) for r in table.to_pylist() if r["kept"])
    return out


def run_sources(run: RunDir) -> dict[str, str]:
    """{source_id: path} of the run's kept clips."""
    return {r["source_id"]: r["path"] for unit in sorted(run.units(SOURCE_FOLDER))
            for r in run.read_unit(SOURCE_FOLDER, unit, ["source_id", "path", "kept"]).to_pylist()
            if r["kept"]}  # fmt: skip


def write_exports(run: RunDir, val_share: float = 0.0) -> dict[str, Any]:
    """exports/<branch>.json for every built branch, exports/mixed.json and the ASR records,
    streamed; the clips of the held-out sources (curation/instructions/split.py) go to the
    same files under exports/val/ instead."""
    branches = [b for b in BRANCHES if run.units(f"instructions/{b}")]
    every = run_sources(run)
    held = val_sources(every, val_share)
    names = Counter(PurePosixPath(p).name for p in every.values())
    shared = sum(n for n in names.values() if n > 1)
    if val_share and shared > max(10, len(every) // 10):
        log.warning("%d of %d sources share a file name with another (%s, ...): the validation "
                    "split goes by file name, so each such name is held out or kept whole",
                    shared, len(every), names.most_common(1)[0][0])  # fmt: skip
    older: dict[str, str] | None = None  # for pair shards written before pairs named a source
    # People's labels (make annotate-pull) replace the machine's pairs about the same thing.
    human = human_labels(run.path / "annotations") if run.storage.is_local else {}
    people_counts: Counter[str] = Counter()
    counts: dict[str, dict[str, int]] = {"train": {}, "val": {}}
    virtual = 0
    with contextlib.ExitStack() as stack:
        mixed = {split: JsonListWriter(stack.enter_context(run.storage.open_output(
            f"exports/{prefix}mixed.json")), f"{prefix}mixed.json")
            for split, prefix in SPLITS.items()}  # fmt: skip
        for branch in branches:
            folder = f"instructions/{branch}"
            with contextlib.ExitStack() as files:
                out = {split: JsonListWriter(files.enter_context(run.storage.open_output(
                    f"exports/{prefix}{branch}.json")), f"{prefix}{branch}.json")
                    for split, prefix in SPLITS.items()}  # fmt: skip
                for unit in sorted(run.units(folder)):
                    rows = sorted(run.read_unit(folder, unit).to_pylist(),
                                  key=lambda r: (r["clip_id"], r["turn"]))  # fmt: skip
                    for clip_id, group in groupby(rows, key=lambda r: r["clip_id"]):
                        pairs = list(group)
                        if not pairs[0]["video"]:
                            virtual += 1
                            continue
                        labels = human.get(clip_id)
                        spoken = next(
                            (p["question"] for p in pairs if p["field"] == "transcript"), None
                        )
                        people = human_pairs(labels or {}, branch, spoken)
                        people_counts.update(kind for kind, _, _ in people)
                        kept = [
                            (p["question"], p["answer"])
                            for p in pairs
                            if keep_machine_pair(p, labels, branch)
                        ]
                        if not kept and not people:
                            continue
                        item = sample(f"{clip_id}-{branch}", pairs[0]["video"],
                                      pairs[0]["has_audio"], branch,
                                      kept + [(q, a) for _, q, a in people],
                                      pairs[0].get("face_track"))  # fmt: skip
                        if people:
                            item["human"] = [kind for kind, _, _ in people]
                        source = pairs[0].get("source_id")
                        if source is None:
                            older = clip_sources(run) if older is None else older
                            source = older.get(clip_id, clip_id)
                        split = "val" if source in held else "train"
                        out[split].add(item)
                        mixed[split].add(item)
                for split, writer in out.items():
                    writer.close()
                    counts[split][branch] = writer.count
        for writer in mixed.values():
            writer.close()
    audio = write_audio_text(run, held)
    return {
        "samples": counts["train"],
        "mixed": mixed["train"].count,
        "audio_text": audio["train"],
        "val": {
            "sources": len(held),
            "of_sources": len(every),
            "samples": counts["val"],
            "mixed": mixed["val"].count,
            "audio_text": audio["val"],
        },  # fmt: skip
        "virtual_clips_left_out": virtual,
        "human": {k: {"clips": people_counts[k], "paper": PEOPLE_PAPER[k]} for k in PEOPLE_PAPER},
    }


def write_audio_text(run: RunDir, held: set[str]) -> dict[str, int]:
    """exports/audio_text.json (and exports/val/audio_text.json for the held-out sources):
    kept clips with a file and a transcript → ASR records."""
    columns = ["clip_id", "source_id", "clip_path", "kept", "transcript"]
    with contextlib.ExitStack() as stack:
        out = {split: JsonListWriter(stack.enter_context(run.storage.open_output(
            f"exports/{prefix}audio_text.json")), f"{prefix}audio_text.json")
            for split, prefix in SPLITS.items()}  # fmt: skip
        for unit in sorted(run.units(SOURCE_FOLDER)):
            for row in run.read_unit(SOURCE_FOLDER, unit, columns).to_pylist():
                if row["kept"] and row["clip_path"] and (row["transcript"] or "").strip():
                    split = "val" if row["source_id"] in held else "train"
                    out[split].add(
                        audio_text_sample(row["clip_id"], row["clip_path"], row["transcript"])
                    )
        for writer in out.values():
            writer.close()
    return {split: writer.count for split, writer in out.items()}


def build_instructions(
    config: PipelineConfig, run: RunDir, branches: list[str], runner: Runner
) -> dict[str, Any]:
    check_ready(run)
    steps = instruction_steps(config, branches)
    for step in steps:
        step.stage.preflight()
    runner.prepare(steps)
    with run.lock():
        totals = Totals()
        runner.run(steps, run, sorted(run.units(SOURCE_FOLDER)), totals)
        stats = {
            b: branch_stats(b, totals.get(s.stage.name))
            for b, s in zip(branches, steps, strict=True)
        }
        exported = runner.submit(write_exports, run, config.instructions.val_share)
        state = run.read_run_json() or {}
        state.setdefault("instructions", {}).update(stats)
        state["exports"] = exported
        run.write_run_json(state)
    return {"branches": stats, "exports": exported}


def format_stats(result: dict[str, Any]) -> str:
    header = f"{'branch':<12} {'eligible':>9} {'of':>6} {'share':>6} {'pairs':>7} {'pairs/clip':>10}   paper: share, pairs/clip"
    lines = [header, "-" * len(header)]
    for branch, s in result["branches"].items():
        paper = s["paper"]
        said = (
            f"{paper['eligible_share']:.2f}, {paper['pairs_per_clip']:.2f}"
            if "eligible_share" in paper
            else f"{paper['pairs']:,} pairs in its human-labelled set"
        )
        lines.append(
            f"{branch:<12} {s['eligible_clips']:>9} {s['clips']:>6} {s['eligible_share']:>6.2f} "
            f"{s['pairs']:>7} {s['pairs_per_clip']:>10.2f}   {said}"
        )
        lines.append(
            f"{'':<12} kinds {s['kinds']}  closed-set letters {s['closed_answer_letters']}"
        )
        for key in ("removed_by_boxes", "removed_by_signals"):
            if s.get(key):
                lines.append(f"{'':<12} {key.replace('_', ' ')}: {s[key]}")
    e = result["exports"]
    lines.append(f"exports: {e['samples']} mixed={e['mixed']} audio_text={e['audio_text']} "
                 f"(virtual clips left out: {e['virtual_clips_left_out']})")  # fmt: skip
    if any(h["clips"] for h in e.get("human", {}).values()):
        lines.append("human labels (make annotate-pull), clips: " + ", ".join(
            f"{k} {h['clips']} (paper {h['paper']:,})" for k, h in e["human"].items()))  # fmt: skip
    v = e["val"]
    lines.append(f"validation (exports/val/, {v['sources']} of {v['of_sources']} sources held "
                 f"out): {v['samples']} mixed={v['mixed']} audio_text={v['audio_text']}")  # fmt: skip
    return "\n".join(lines)
