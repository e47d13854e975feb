"""A global stage (dedup): every shard's kept rows at once, its output written back per shard.

Only the columns the stage reads are held for all shards at once: the stage returns just its
own columns and verdicts, in row order, and each shard's output is its input rows with those
appended, written one shard at a time. A global stage is a deterministic function of its
whole input, so when a killed run left some output shards behind, recomputing and writing
only the missing ones is consistent.

When a shard it read changed (a retried caption), the stage's folder holds a stale marker
(curation/shard_task.invalidate): then every shard's verdicts are recomputed, but a shard is
rewritten, and what later stages made from it removed, only where its verdicts changed, so a
retried caption costs the later model stages the clips it affects, not the whole run. The
marker goes once every shard is reconciled; a kill before that leaves it for the next run.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

from curation.rundir import RunDir
from curation.shard_task import STALE, Step, Work, complete, input_rows, invalidate
from curation.units import Unit
from curation.worker import Worker


def run_global(run: RunDir, step: Step, units: list[Unit], worker: Worker) -> list[dict[str, Any]]:
    """The stage over all `units` (every shard of its input); every shard's statistics."""
    stage = step.stage
    marker = f"{step.folder}/{STALE}"
    stale = run.storage.exists(marker)
    todo = set(units) if stale else {u for u in units if not run.has(step.folder, u)}
    if not todo:
        return [run.unit_stats(step.folder, u) for u in units]
    started = time.perf_counter()
    columns = [*stage.reads, *stage.also_reads]
    parts = [_narrow(input_rows(run, step, u), columns) for u in units]
    sizes = [t.num_rows for t in parts]
    stage.setup(worker)
    try:
        decided = stage.process(pa.concat_tables(parts))
    finally:
        stage.teardown()
    if decided.num_rows != sum(sizes):
        raise ValueError(f"global stage {stage.name} must return one row per input row")
    seconds = (time.perf_counter() - started) / max(1, len(units))
    stats, offset = [], 0
    for unit, size in zip(units, sizes, strict=True):
        if unit in todo:
            stats.append(_write(run, step, unit, decided.slice(offset, size), seconds, worker))
        else:
            stats.append(run.unit_stats(step.folder, unit))
        offset += size
    run.storage.delete(marker)
    return stats


def _write(
    run: RunDir, step: Step, unit: Unit, decided: pa.Table, seconds: float, worker: Worker
) -> dict[str, Any]:
    full = input_rows(run, step, unit)
    out = _append(step.stage, full, decided)
    if run.has(step.folder, unit):  # reconciling after a change upstream
        if run.read_unit(step.folder, unit).replace_schema_metadata(None).equals(out):
            return run.unit_stats(step.folder, unit)
        work = Work(unit, full, invalidated=invalidate(run, step, unit))
    else:
        work = Work(unit, full)
    return complete(run, step, work, out, seconds, worker)


def _narrow(table: pa.Table, columns: list[str]) -> pa.Table:
    kept = [c for c in columns if c in table.column_names]
    return table.select(kept).replace_schema_metadata(None)


def _append(stage: Any, full: pa.Table, decided: pa.Table) -> pa.Table:
    """A shard's input rows with the global stage's columns and verdict (its schema's order)."""
    arrays = []
    for f in stage.schema:
        source = decided if f.name in decided.column_names else full
        arrays.append(source[f.name].cast(f.type))
    return pa.Table.from_arrays(arrays, schema=stage.schema)
