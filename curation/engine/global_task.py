"""A global stage (dedup): a decision over every shard's kept rows, written back per shard.

The coordinating task (in the driver's process for the local runner, one Ray task for the
Ray runner) never holds the shards. The stage plans its work as lists of independent tasks
over blocks of shards (`GlobalJob.blocks`: whole shards, about `block_rows` rows each) and
hands them to a `Pool`, which runs them one after another in-process or as Ray tasks
(curation/engine/runners/ray_pool.py). What comes back is one small decision per shard (for dedup:
which rows repeat which clip); the shards' outputs are then written by one task per block,
each reading its shards' rows again and appending the stage's columns and verdicts.

A global stage is a deterministic function of its whole input, so when a killed run left
some output shards behind, recomputing and writing only the missing ones is consistent. When
a shard it read changed (a retried caption), the stage's folder holds a stale marker
(curation/engine/shard_task.invalidate): then every shard's decision is recomputed, but a shard is
rewritten, and what later stages made from it removed, only where its verdicts changed. The
marker goes once every shard is reconciled; a kill before that leaves it for the next run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from curation.core import faults
from curation.core.pool import Pool
from curation.core.units import Unit
from curation.core.worker import Worker
from curation.engine.shard_task import STALE, Step, Work, complete, invalidate, kept_rows
from curation.rundir import RunDir


@dataclass(frozen=True)
class GlobalJob:
    """What a global stage decides over: the run, its step, the shards in blocks."""

    run: RunDir
    step: Step
    blocks: tuple[tuple[Unit, ...], ...]
    remote: bool  # tasks run in Ray workers (their Worker comes from Ray)
    task_gpus: float = 0.0  # GPUs each of the stage's tasks reserved

    def read(self, unit: Unit, columns: list[str]) -> pa.Table:
        """A shard's kept input rows, only `columns` (those it has)."""
        return read_columns(self.run, self.step, unit, columns)

    def input_type(self, unit: Unit, column: str) -> pa.DataType:
        return (
            self.run.storage.read_schema(self.run.shard_file(self.step.input_folder, unit))
            .field(column)
            .type
        )

    def worker(self) -> Worker:
        return Worker.from_ray() if self.remote else Worker.local()


def read_columns(run: RunDir, step: Step, unit: Unit, columns: list[str]) -> pa.Table:
    source = Unit(unit.shard) if step.pieces_input else unit  # the file the shard is in
    wanted = list(dict.fromkeys([*columns, "kept"]))
    rows = kept_rows(run.storage.read_present(run.shard_file(step.input_folder, source), wanted))
    if step.pieces_input:
        rows = unit.slice_of(rows, step.per_piece)
    return rows.select([c for c in columns if c in rows.column_names])


def blocks_of(step: Step, units: list[Unit], block_rows: int) -> list[list[Unit]]:
    """Consecutive shards, about `block_rows` rows a block (a shard holds at most
    run.clips_per_shard clips): fixed by the shard list, not by the cluster."""
    per_block = max(1, block_rows // max(1, step.per_piece))
    return [units[s : s + per_block] for s in range(0, len(units), per_block)]


def run_global(
    run: RunDir,
    step: Step,
    units: list[Unit],
    pool: Pool,
    remote: bool = False,
    task_gpus: float = 0.0,
) -> list[dict[str, Any]]:
    """The stage over all `units` (every shard of its input); every shard's statistics."""
    with faults.in_shard(stage=step.stage.name):  # a fault of the machine fails the stage
        return _run_global(run, step, units, pool, remote, task_gpus)


def _run_global(
    run: RunDir, step: Step, units: list[Unit], pool: Pool, remote: bool, task_gpus: float
) -> list[dict[str, Any]]:
    stage = step.stage
    marker = f"{step.folder}/{STALE}"
    stale = run.storage.exists(marker)
    todo = set(units) if stale else {u for u in units if not run.has(step.folder, u)}
    if not todo:
        return [run.unit_stats(step.folder, u) for u in units]
    started = time.perf_counter()
    blocks = blocks_of(step, units, stage.rows_a_task)
    job = GlobalJob(run, step, tuple(tuple(b) for b in blocks), remote, task_gpus)
    decisions = stage.decide(job, pool)  # one per unit, in order
    seconds = (time.perf_counter() - started) / max(1, len(units))
    writes, at = [], 0
    for block in blocks:
        mine = decisions[at : at + len(block)]
        at += len(block)
        plan = [(u, d) for u, d in zip(block, mine, strict=True) if u in todo]
        if plan:
            writes.append((job, plan, seconds))
    written = {s["shard"]: s for part in pool.map(_write_block, writes, f"{stage.name} write")
               for s in part}  # fmt: skip
    run.storage.delete(marker)
    return [written.get(u.key) or run.unit_stats(step.folder, u) for u in units]


def _write_block(args: tuple[GlobalJob, list[tuple[Unit, Any]], float]) -> list[dict[str, Any]]:
    job, plan, seconds = args
    worker = job.worker()
    return [_write(job, unit, decision, seconds, worker) for unit, decision in plan]


def _write(
    job: GlobalJob, unit: Unit, decision: Any, seconds: float, worker: Worker
) -> dict[str, Any]:
    run, step = job.run, job.step
    full = read_columns(run, step, unit, step.stage.schema.names)  # what the output carries
    out = _append(step.stage, full, step.stage.decided(full, decision))
    if run.has(step.folder, unit):  # reconciling after a change upstream
        if run.read_unit(step.folder, unit).replace_schema_metadata(None).equals(out):
            return run.unit_stats(step.folder, unit)
        work = Work(unit, full, invalidated=invalidate(run, step, unit))
    else:
        work = Work(unit, full)
    return complete(run, step, work, out, seconds, worker)


def _append(stage: Any, full: pa.Table, decided: pa.Table) -> pa.Table:
    """A shard's input rows with the global stage's columns and verdict (its schema's order)."""
    if decided.num_rows != full.num_rows:
        raise ValueError(f"global stage {stage.name} must decide one row per input row")
    arrays = []
    for f in stage.schema:
        source = decided if f.name in decided.column_names else full
        arrays.append(source[f.name].cast(f.type))
    return pa.Table.from_arrays(arrays, schema=stage.schema)
