"""`make instructions`: per-branch instruction pairs on a finished run, and the exports.

Reads the kept rows of the run's `structured/` folder, writes `instructions/<branch>/` as
Parquet (one row per pair, with its provenance), then exports the HumanOmni training format
under `exports/`: `<branch>.json` for every branch built so far and `mixed.json` with all of
them. Statistics per branch go to run.json (`instructions`) beside the paper's figures.
Virtual clips (cut.mode virtual) have no file a trainer could read: they get instructions
but are left out of the exports, and counted.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from curation.config import PipelineConfig
from curation.embed import CaptionEmbedder
from curation.instructions.exports import check_export, sample, write_export
from curation.instructions.generate import BRANCHES, eligible, template_pairs, unique
from curation.instructions.llm_questions import QuestionWriter
from curation.rundir import RunDir, write_table

log = logging.getLogger(__name__)

# The paper's output (section 3): eligible share of 2.4M clips, and pairs per eligible clip.
PAPER = {
    "face": {"eligible_share": round(1.78 / 2.4, 3), "pairs_per_clip": round(4.12 / 1.78, 2)},
    "body": {"eligible_share": round(2.21 / 2.4, 3), "pairs_per_clip": round(5.75 / 2.21, 2)},
    "interaction": {"eligible_share": 1.0, "pairs_per_clip": 2.0},
}

PAIRS = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("branch", pa.string(), nullable=False),
        pa.field("turn", pa.int32()),
        pa.field("question", pa.string()),
        pa.field("answer", pa.string()),
        pa.field("kind", pa.string()),  # open | closed | caption | llm
        pa.field("field", pa.string()),
        pa.field("source", pa.string()),  # template id, or the model that wrote the pair
        pa.field("prompt_hash", pa.string()),
        pa.field("video", pa.string()),  # the clip file; null for virtual clips
        pa.field("has_audio", pa.bool_()),
    ]
)


class InstructionsError(RuntimeError):
    """The run cannot get instructions yet (no finished structure stage)."""


def structured_clips(run: RunDir) -> list[dict[str, Any]]:
    state = run.read_run_json()
    status = ((state or {}).get("stages") or {}).get("structure", {}).get("status")
    if status != "done":
        raise InstructionsError(
            f"{run.path}: the structure stage has not finished (status {status or 'absent'}); "
            "run `make curate` with the same RUN and CONFIG first"
        )
    table = run.read_folder("structured")
    table = table.filter(pc.equal(table["kept"], True))
    return sorted(table.to_pylist(), key=lambda r: r["clip_id"])


def branch_pairs(
    branch: str, clips: list[dict[str, Any]], writer: QuestionWriter | None, progress: bool
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    chosen = [c for c in clips if eligible(branch, c["fields"])]
    llm, llm_failed = ({}, 0)
    if writer is not None and chosen:
        llm, llm_failed = writer.ask(branch, [(c["clip_id"], c["fields"]) for c in chosen])
    rows, kinds, letters = [], Counter(), Counter()
    for position, clip in enumerate(tqdm(chosen, desc=branch, disable=not progress)):
        pairs = template_pairs(branch, clip["clip_id"], clip["fields"], clip.get("consensus"),
                               position)  # fmt: skip
        pairs = unique(pairs + llm.get(clip["clip_id"], []))
        for turn, pair in enumerate(pairs):
            kinds[pair.kind] += 1
            if pair.kind == "closed":
                letters[pair.answer[1]] += 1
            rows.append({**pair.row(), "clip_id": clip["clip_id"], "branch": branch,
                         "turn": turn, "video": clip.get("clip_path"),
                         "has_audio": bool(clip.get("has_audio"))})  # fmt: skip
    stats = {
        "clips": len(clips),
        "eligible_clips": len(chosen),
        "eligible_share": round(len(chosen) / len(clips), 3) if clips else 0.0,
        "pairs": len(rows),
        "pairs_per_clip": round(len(rows) / len(chosen), 2) if chosen else 0.0,
        "kinds": dict(sorted(kinds.items())),
        "closed_answer_letters": dict(sorted(letters.items())),
        "llm_failed_clips": llm_failed,
        "paper": PAPER[branch],
    }
    return rows, stats


def export(run: RunDir) -> dict[str, Any]:
    """Write exports/<branch>.json for every built branch, and exports/mixed.json."""
    everything, counts, virtual = [], {}, 0
    for branch in BRANCHES:
        path = run.folder(f"instructions/{branch}") / "part-00000.parquet"
        if not path.exists():
            continue
        by_clip: dict[str, list[dict[str, Any]]] = {}
        for row in pq.read_table(path).to_pylist():
            by_clip.setdefault(row["clip_id"], []).append(row)
        samples = []
        for clip_id, rows in by_clip.items():
            if not rows[0]["video"]:
                virtual += 1
                continue
            rows.sort(key=lambda r: r["turn"])
            samples.append(sample(f"{clip_id}-{branch}", rows[0]["video"], rows[0]["has_audio"],
                                  branch, [(r["question"], r["answer"]) for r in rows]))  # fmt: skip
        write_export(run.folder("exports") / f"{branch}.json", samples)
        everything += samples
        counts[branch] = len(samples)
    write_export(run.folder("exports") / "mixed.json", everything)
    for name in [*counts, "mixed"]:
        problems = check_export(run.folder("exports") / f"{name}.json")
        if problems:
            raise ValueError(f"exports/{name}.json fails the format check: {problems[:3]}")
    return {"samples": counts, "mixed": len(everything), "virtual_clips_left_out": virtual}


def build_instructions(
    config: PipelineConfig, run: RunDir, branches: list[str], progress: bool = True
) -> dict[str, Any]:
    clips = structured_clips(run)
    settings = config.instructions
    writer = None
    if settings.llm_questions > 0:
        embedder = None
        if settings.grounding > 0:
            embedder = CaptionEmbedder(settings.embedder, settings.device)
            embedder.load()
        writer = QuestionWriter(settings.backend, settings.prompt, settings.llm_questions,
                                settings.attempts, settings.max_field_chars, embedder,
                                settings.grounding)  # fmt: skip
    stats = {}
    for branch in branches:
        before = writer.ungrounded if writer else 0
        rows, stats[branch] = branch_pairs(branch, clips, writer, progress)
        stats[branch]["llm_ungrounded_pairs"] = (writer.ungrounded if writer else 0) - before
        table = pa.Table.from_pylist(rows, schema=PAIRS)
        write_table(run.folder(f"instructions/{branch}") / "part-00000.parquet", table,
                    {"stage": f"instructions/{branch}", **stats[branch]})  # fmt: skip
    exported = export(run)
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
        lines.append(
            f"{branch:<12} {s['eligible_clips']:>9} {s['clips']:>6} {s['eligible_share']:>6.2f} "
            f"{s['pairs']:>7} {s['pairs_per_clip']:>10.2f}   {paper['eligible_share']:.2f}, "
            f"{paper['pairs_per_clip']:.2f}"
        )
        lines.append(
            f"{'':<12} kinds {s['kinds']}  closed-set letters {s['closed_answer_letters']}"
        )
    e = result["exports"]
    lines.append(f"exports: {e['samples']} mixed={e['mixed']} (virtual clips left out: "
                 f"{e['virtual_clips_left_out']})")  # fmt: skip
    return "\n".join(lines)
