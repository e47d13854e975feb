"""The funnel computed from the Parquet itself: per stage, rows in, out, kept, rejected by reason.

run.json has the same numbers, but only as of the last time the pipeline wrote it; counting
the rows answers for a run that is still going, and checks that no row went missing. A stage's
rows in are the kept rows of the stage before it that it has made its rows from; `waiting` counts the
kept rows it has not reached yet.
"""

from __future__ import annotations

from collections import Counter
from pathlib import PurePosixPath
from typing import Any

from curation.browse.db import RunDB, ident, same_shards, sql_str
from curation.browse.layout import Folder
from curation.browse.text import printable


def _verdicts(db: RunDB, folders: list[Folder]) -> dict[str, Counter[str | None]]:
    """Rows per folder by verdict: None counts kept rows, a reason counts its rejects. One
    query for every folder, so DuckDB reads them all in one parallel pass."""
    parts = [
        f"SELECT {sql_str(f.name)} AS folder, kept, reject_reason, count(*) AS n "
        f"FROM {db.scan(f.shards)} GROUP BY ALL"
        for f in folders
    ]
    out: dict[str, Counter[str | None]] = {f.name: Counter() for f in folders}
    if parts:
        _, rows = db.rows(" UNION ALL ".join(parts), what="cannot count the stages' rows")
        for folder, kept, reason, n in rows:
            out[folder][None if kept else (reason or "unknown")] += n
    return out


def _kept_rows(db: RunDB, files: list[PurePosixPath], has_verdict: bool = True) -> int:
    """Kept rows in some shards."""
    if not files:
        return 0
    cond = "WHERE kept" if has_verdict else ""
    _, ((n,),) = db.rows(f"SELECT count(*) FROM {db.scan(files)} {cond}", what="cannot count rows")
    return int(n)


def _waiting(db: RunDB, previous: Folder, folder: Folder) -> int:
    """Kept rows of `previous` that `folder` has not made its rows from yet: those in shards
    it lacks, or (across the scene split, where shards are re-cut) those it has no clip of."""
    verdict = previous.name != "inputs"
    if not folder.exists or same_shards(previous, folder):
        done = {p.name for p in folder.shards}
        return _kept_rows(db, [p for p in previous.shards if p.name not in done], verdict)
    _, ((n,),) = db.rows(
        f"SELECT count(*) FROM {db.scan(previous.shards)} WHERE kept AND clip_id NOT IN "
        f"(SELECT clip_id FROM {db.scan(folder.shards)})",
        what="cannot count rows",
    )
    return int(n)


def funnel(db: RunDB) -> dict[str, Any]:
    """Per stage: rows in, out, kept, rejected, and `waiting` (kept rows of the stage before
    it that it has not reached). A stage is done when nothing waits for it and the stage
    before it is done; the source list is done when all its shards are written."""
    layout = db.layout
    total = layout.total_shards
    counts = _verdicts(db, [f for f in layout.stages if f.exists])
    previous, previous_kept = layout.inputs, None
    previous_done = previous is not None and (total is None or len(previous.shards) >= total)
    if previous is not None and previous.exists:
        previous_kept = _kept_rows(db, list(previous.shards), has_verdict=False)
    stages = []
    for folder in layout.stages:
        verdicts = counts.get(folder.name, Counter())
        waiting = 0
        if previous is not None and previous.exists and previous_kept:
            waiting = _waiting(db, previous, folder)
        if not folder.exists:
            status = "pending"
        elif waiting == 0 and previous_done:
            status = "done"
        else:
            status = "partial"
        rejected = {r: n for r, n in verdicts.items() if r is not None}
        stages.append(
            {
                "stage": folder.stage,
                "folder": folder.name,
                "status": status,
                "shards_done": len(folder.shards),
                "rows_in": (previous_kept or 0) - waiting,
                "rows_out": sum(verdicts.values()),
                "kept": verdicts[None],
                "rejected": dict(sorted(rejected.items(), key=lambda kv: (-kv[1], kv[0]))),
                "waiting": waiting,
            }
        )
        previous, previous_kept, previous_done = folder, verdicts[None], status == "done"
    instructions = {}
    for branch in layout.branches:
        # A clip's pairs are numbered from turn 0, so counting turn 0 counts clips exactly,
        # without a DISTINCT over every pair.
        _, ((pairs, clips),) = db.rows(
            f"SELECT count(*), count(*) FILTER (WHERE turn = 0) FROM {ident(branch.view)}",
            what=f"cannot count {branch.name}",
        )
        instructions[branch.name.split("/", 1)[1]] = {"pairs": pairs, "clips": clips}
    return {
        "run": layout.name,
        "path": str(layout.path),
        "shards": total,
        "stages": stages,
        "instructions": instructions,
    }


def format_summary(summary: dict[str, Any]) -> str:
    stages = summary["stages"]
    w = max([5, *(len(s["stage"]) for s in stages)])
    f = max([6, *(len(s["folder"]) for s in stages)])
    waiting = any(s["waiting"] for s in stages)
    header = (
        f"{'stage':<{w}} {'folder':<{f}} {'status':<8} {'shards':>7} {'in':>8} {'out':>8} "
        f"{'kept':>8}{' waiting' if waiting else ''}  rejected"
    )
    lines = [
        f"run {printable(summary['run'])}: {printable(summary['path'])}",
        header,
        "-" * len(header),
    ]
    for s in stages:
        reasons = ", ".join(f"{printable(r)}={n}" for r, n in s["rejected"].items()) or "-"
        wait = f" {s['waiting']:>7}" if waiting else ""
        lines.append(
            f"{s['stage']:<{w}} {s['folder']:<{f}} {s['status']:<8} "
            f"{s['shards_done']:>7} {s['rows_in']:>8} {s['rows_out']:>8} "
            f"{s['kept']:>8}{wait}  {reasons}"
        )
    for branch, n in summary["instructions"].items():
        lines.append(f"instructions/{printable(branch)}: {n['pairs']} pairs on {n['clips']} clips")
    return "\n".join(lines)
