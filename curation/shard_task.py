"""The work both runners execute: one stage on one shard (curation/units.py).

A stage's shard is made from the kept rows of the previous folder's shard with the same key,
or, right after the scene split, from a fixed slice of them. A finished shard (its file
exists) is skipped. A finished shard holding retryable rejects has exactly those rows done
again and merged in; the later stages' outputs made from its old rows are removed first, so a
kill at any moment leaves either the old shard (and the retry to do) or the new one. The
output and its statistics are written in one atomic file, by the worker that made it; the
statistics, not the rows, are what goes back to the driver.

A model stage is split into parts (stages/model_stage.py): `prepare_unit` (prompts), then
`answer_unit` once per model, then `finish_unit`; `run_unit` does them in turn.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from curation.rundir import RunDir
from curation.units import Unit
from curation.worker import Worker
from stages.base import Stage, pop_extra
from stages.model_stage import ModelStage, Outcome, Prepared


@dataclass(frozen=True)
class Step:
    """A stage in its place in the pipeline."""

    stage: Stage
    input_folder: str
    pieces_input: bool = False  # the input is per source shard; this step works on pieces
    per_piece: int = 64  # run.clips_per_shard
    # Output folders made from this step's rows: per shard up to the first global stage
    # (`downstream`), then whole (`wiped`: a global stage depends on every shard).
    downstream: tuple[str, ...] = ()
    wiped: tuple[str, ...] = ()

    @property
    def folder(self) -> str:
        return self.stage.output_folder


def plan_steps(stages: list[Stage], first_input: str, per_piece: int) -> list[Step]:
    """Every stage's step: its input folder, whether it reads pieces, what depends on it."""
    steps = []
    inputs = [first_input, *(s.output_folder for s in stages[:-1])]
    for i, (stage, folder) in enumerate(zip(stages, inputs, strict=True)):
        later = stages[i + 1 :]
        cut = next((k for k, s in enumerate(later) if s.is_global), len(later))
        pieces_input = i > 0 and stages[i - 1].reshards
        steps.append(
            Step(stage, folder, pieces_input, per_piece,
                 tuple(s.output_folder for s in later[:cut]),
                 tuple(s.output_folder for s in later[cut:]))
        )  # fmt: skip
    return steps


def kept_rows(table: pa.Table) -> pa.Table:
    if "kept" not in table.column_names:
        return table
    return table.filter(pc.equal(table["kept"], True))


def input_rows(run: RunDir, step: Step, unit: Unit) -> pa.Table:
    if step.pieces_input:
        whole = kept_rows(run.read_unit(step.input_folder, Unit(unit.shard)))
        return unit.slice_of(whole, step.per_piece)
    return kept_rows(run.read_unit(step.input_folder, unit))


def next_units(step: Step, unit: Unit, stats: dict[str, Any]) -> list[Unit]:
    """The shards of the steps after this one that this shard feeds."""
    if step.stage.reshards:
        return unit.pieces(int(stats["kept"]), step.per_piece)
    return [unit]


@dataclass
class Work:
    """What a step has to do for one shard."""

    unit: Unit
    rows: pa.Table | None  # rows to process; None when the shard is finished
    previous: pa.Table | None = None  # the finished shard whose retryable rejects are re-done
    stats: dict[str, Any] | None = None  # the finished shard's statistics


def plan_work(run: RunDir, step: Step, unit: Unit) -> Work:
    stage = step.stage
    if not run.has(step.folder, unit):
        return Work(unit, input_rows(run, step, unit))
    stats = run.unit_stats(step.folder, unit)
    if not stage.retryable_reasons & set(stats.get("rejected", {})):
        return Work(unit, None, stats=stats)
    previous = run.read_unit(step.folder, unit)
    redo = [
        cid
        for cid, reason in zip(
            previous["clip_id"].to_pylist(), previous["reject_reason"].to_pylist(), strict=True
        )
        if reason in stage.retryable_reasons
    ]
    rows = input_rows(run, step, unit)
    rows = rows.filter(pc.is_in(rows["clip_id"], pa.array(redo, pa.string())))
    for folder in step.downstream:  # made from the rows about to change
        run.delete_unit(folder, unit)
    for folder in step.wiped:
        run.storage.delete_folder(folder)
    return Work(unit, rows, previous, stats)


def shard_stats(
    stage: Stage,
    unit: Unit,
    rows_in: int,
    out: pa.Table,
    seconds: float,
    worker: Worker,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    verdicts = out["reject_reason"].to_pylist() if "reject_reason" in out.column_names else []
    reasons = Counter(r for r in verdicts if r is not None)
    stats = {
        "stage": stage.name,
        "shard": unit.key,
        "rows_in": rows_in,
        "rows_out": out.num_rows,
        "kept": out.num_rows - sum(reasons.values()),
        "rejected": dict(sorted(reasons.items())),
        "seconds": round(seconds, 4),
        "worker": worker.describe(),
    }
    if extra:
        stats["extra"] = extra
    return stats


def merge_retried(previous: pa.Table, redone: pa.Table, schema: pa.Schema) -> pa.Table:
    """The previous rows of a shard, each replaced by its re-done version where there is one."""
    fresh = {r["clip_id"]: r for r in redone.to_pylist()}
    return pa.Table.from_pylist(
        [fresh.get(r["clip_id"], r) for r in previous.to_pylist()], schema=schema
    )


def check_output(stage: Stage, out: pa.Table) -> pa.Table:
    if not out.schema.equals(stage.schema):
        raise TypeError(
            f"stage {stage.name} returned a table that does not match its schema:\n"
            f"{out.schema}\n!=\n{stage.schema}"
        )
    return out


def complete(
    run: RunDir, step: Step, work: Work, out: pa.Table, seconds: float, worker: Worker
) -> dict[str, Any]:
    """Write a shard's output (merged into the finished shard on a retry); its statistics."""
    stage = step.stage
    out, extra = pop_extra(out)
    out = check_output(stage, out)
    rows_in = work.rows.num_rows if work.rows is not None else 0
    if work.previous is not None and work.stats is not None:
        out = merge_retried(work.previous, out, stage.schema)
        rows_in = work.stats.get("rows_in", out.num_rows)
        seconds += work.stats.get("seconds", 0.0)
    stats = shard_stats(stage, work.unit, rows_in, out, seconds, worker, extra)
    run.write_unit(step.folder, work.unit, out, stats)
    return stats


def process_rows(stage: Stage, rows: pa.Table) -> pa.Table:
    missing = [c for c in stage.reads if c not in rows.column_names]
    if missing:
        raise ValueError(f"stage {stage.name}: input lacks columns {missing}")
    size = min(stage.batch_size, max(1, rows.num_rows))
    parts = [stage.process(rows.slice(i, size)) for i in range(0, rows.num_rows, size)]
    return pa.concat_tables(parts) if parts else stage.schema.empty_table()


def run_unit(run: RunDir, step: Step, unit: Unit, worker: Worker) -> dict[str, Any]:
    """One stage (already set up) on one shard; returns the shard's statistics."""
    work = plan_work(run, step, unit)
    if work.rows is None:
        assert work.stats is not None
        return work.stats
    started = time.perf_counter()
    out = process_rows(step.stage, work.rows)
    return complete(run, step, work, out, time.perf_counter() - started, worker)


# --- a model stage in parts --------------------------------------------------------------------
@dataclass
class InFlight:
    """A shard between the parts of a model stage (what travels from worker to worker)."""

    work: Work
    clips: list[dict[str, Any]] = field(default_factory=list)
    prompts: list[list[Prepared] | None] = field(default_factory=list)
    outcomes: list[list[Outcome]] = field(default_factory=list)
    seconds: float = 0.0


def prepare_unit(run: RunDir, step: Step, unit: Unit) -> InFlight:
    stage = step.stage
    assert isinstance(stage, ModelStage)
    work = plan_work(run, step, unit)
    if work.rows is None:
        return InFlight(work)
    started = time.perf_counter()
    missing = [c for c in stage.reads if c not in work.rows.column_names]
    if missing:
        raise ValueError(f"stage {stage.name}: input lacks columns {missing}")
    clips = work.rows.to_pylist()
    prompts: list[list[Prepared] | None] = list(stage.prepare(clips))
    return InFlight(work, clips, prompts, [], time.perf_counter() - started)


def answer_unit(step: Step, flight: InFlight, index: int) -> InFlight:
    """Model `index` of the stage answers the shard's prompts (its worker holds that model)."""
    stage = step.stage
    assert isinstance(stage, ModelStage)
    if flight.work.rows is None:
        return flight
    started = time.perf_counter()
    prompts = flight.prompts[index]
    assert prompts is not None
    flight.outcomes.append(stage.answer(index, prompts))
    flight.prompts[index] = None  # frames are not needed any more: travel light
    flight.seconds += time.perf_counter() - started
    return flight


def finish_unit(run: RunDir, step: Step, flight: InFlight, worker: Worker) -> dict[str, Any]:
    stage = step.stage
    assert isinstance(stage, ModelStage)
    if flight.work.rows is None:
        assert flight.work.stats is not None
        return flight.work.stats
    started = time.perf_counter()
    out = stage.finish(flight.clips, flight.outcomes)
    seconds = flight.seconds + time.perf_counter() - started
    return complete(run, step, flight.work, out, seconds, worker)


# --- global stages -------------------------------------------------------------------------
def run_global(run: RunDir, step: Step, units: list[Unit], worker: Worker) -> list[dict[str, Any]]:
    """A stage over every shard's kept rows at once; its output is written back per shard.

    Only the columns the stage reads are held for all shards at once (the stage returns
    just its own columns and verdicts, in row order); each shard's output is then its input
    rows with those columns appended, one shard at a time. A global stage is a
    deterministic function of its whole input, so when a killed run left some output shards
    behind, recomputing and writing only the missing ones is consistent.
    """
    stage = step.stage
    todo = {u for u in units if not run.has(step.folder, u)}
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
        if unit not in todo:
            stats.append(run.unit_stats(step.folder, unit))
        else:
            full = input_rows(run, step, unit)
            out = _append(stage, full, decided.slice(offset, size))
            work = Work(unit, full)
            stats.append(complete(run, step, work, out, seconds, worker))
        offset += size
    return stats


def _narrow(table: pa.Table, columns: list[str]) -> pa.Table:
    return table.select([c for c in columns if c in table.column_names]).replace_schema_metadata(
        None
    )


def _append(stage: Stage, full: pa.Table, decided: pa.Table) -> pa.Table:
    """A shard's input rows with the global stage's columns and verdict (its schema's order)."""
    arrays = []
    for f in stage.schema:
        source = decided if f.name in decided.column_names else full
        arrays.append(source[f.name].cast(f.type))
    return pa.Table.from_arrays(arrays, schema=stage.schema)
