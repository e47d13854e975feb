"""The work both runners execute: one stage on one shard (curation/core/units.py).

A stage's shard is made from the kept rows of the previous folder's shard with the same key,
or, right after the scene split, from a fixed slice of them. A finished shard (its file
exists) is skipped. A finished shard holding retryable rejects has exactly those rows done
again and merged in; the later stages' outputs made from its old rows are removed first, so a
kill at any moment leaves either the old shard (and the retry to do) or the new one. The
output and its statistics are written in one atomic file, by the worker that made it; the
statistics, not the rows, are what goes back to the driver.

A stage whose work is split into parts (its `model_groups()`, the model stages) runs as
`prepare_unit` (prompts), then `answer_unit` once per model, then `finish_unit`; `run_unit`
does all of a stage's work in one worker.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from curation.core import faults
from curation.core.units import Unit
from curation.core.worker import Worker
from curation.rundir import RunDir
from stages.base import Stage, pop_extra


@dataclass(frozen=True)
class Step:
    """A stage in its place in the pipeline."""

    stage: Stage
    input_folder: str
    pieces_input: bool = False  # the input is per source shard; this step works on pieces
    per_piece: int = 64  # run.clips_per_shard
    # Output folders made from this step's shards, shard by shard, up to the next global
    # stage, which depends on every shard: it is marked stale instead (`next_global`), and
    # when it is done again only the shards whose verdicts changed are redone after it.
    downstream: tuple[str, ...] = ()
    next_global: str | None = None

    @property
    def folder(self) -> str:
        return self.stage.output_folder


def plan_steps(
    stages: list[Stage], first_input: str, per_piece: int, after: tuple[str, ...] = ()
) -> list[Step]:
    """Every stage's step: its input folder, whether it reads pieces, what depends on it.
    `after`: folders made shard by shard from the last stage's output (instructions)."""
    steps = []
    inputs = [first_input, *(s.output_folder for s in stages[:-1])]
    for i, (stage, folder) in enumerate(zip(stages, inputs, strict=True)):
        later = stages[i + 1 :]
        cut = next((k for k, s in enumerate(later) if s.is_global), None)
        down = tuple(s.output_folder for s in later[:cut]) + (after if cut is None else ())
        pieces_input = i > 0 and stages[i - 1].reshards
        glob = later[cut].output_folder if cut is not None else None
        steps.append(Step(stage, folder, pieces_input, per_piece, down, glob))
    return steps


STALE = ".stale"  # in a global stage's folder: some shard it read has changed since


def invalidate(run: RunDir, step: Step, unit: Unit) -> list[str]:
    """Remove what was made from this step's shard `unit` (it is about to change); the
    folders whose shards are now missing or stale."""
    for folder in step.downstream:
        run.delete_unit(folder, unit)
    if step.next_global is None:
        return list(step.downstream)
    run.storage.write_bytes(f"{step.next_global}/{STALE}", b"")
    return [*step.downstream, step.next_global]


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
    invalidated: list[str] = field(default_factory=list)  # folders it made stale


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
    # What was made from the rows about to change goes first: a kill from here on leaves the
    # old shard, its retryable rejects still in it, and the retry still to do.
    return Work(unit, rows, previous, stats, invalidate(run, step, unit))


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
    # The driver learns which folders lost shards (not part of the stored statistics).
    return {**stats, "invalidated": work.invalidated} if work.invalidated else stats


def process_rows(stage: Stage, rows: pa.Table) -> pa.Table:
    missing = [c for c in stage.reads if c not in rows.column_names]
    if missing:
        raise ValueError(f"stage {stage.name}: input lacks columns {missing}")
    size = min(stage.batch_size, max(1, rows.num_rows))
    parts = [stage.process(rows.slice(i, size)) for i in range(0, rows.num_rows, size)]
    return pa.concat_tables(parts) if parts else stage.schema.empty_table()


def _in_shard(step: Step, unit: Unit) -> contextlib.AbstractContextManager[None]:
    """A fault of the machine inside fails the shard, naming it (curation/core/faults.py)."""
    return faults.in_shard(stage=step.stage.name, shard=unit.key)


def run_unit(run: RunDir, step: Step, unit: Unit, worker: Worker) -> dict[str, Any]:
    """One stage on one shard; returns the shard's statistics. The stage's models are
    loaded on the first shard with work, so resuming past a finished stage loads nothing."""
    with _in_shard(step, unit):
        work = plan_work(run, step, unit)
        if work.rows is None:
            assert work.stats is not None
            return work.stats
        step.stage.setup(worker)
        started = time.perf_counter()
        out = process_rows(step.stage, work.rows)
        return complete(run, step, work, out, time.perf_counter() - started, worker)


# --- a stage in parts ---------------------------------------------------------------------------
@dataclass
class InFlight:
    """A shard between the parts of a split stage (what travels from worker to worker)."""

    work: Work
    rows: list[dict[str, Any]] = field(default_factory=list)
    prepared: list[Any] = field(default_factory=list)  # by model index; None once answered
    answers: dict[int, Any] = field(default_factory=dict)  # by model index
    seconds: float = 0.0


def prepare_unit(run: RunDir, step: Step, unit: Unit) -> InFlight:
    with _in_shard(step, unit):
        stage = step.stage
        work = plan_work(run, step, unit)
        if work.rows is None:
            return InFlight(work)
        started = time.perf_counter()
        missing = [c for c in stage.reads if c not in work.rows.column_names]
        if missing:
            raise ValueError(f"stage {stage.name}: input lacks columns {missing}")
        rows = work.rows.to_pylist()
        prepared = list(stage.prepare(rows))
        return InFlight(work, rows, prepared, {}, time.perf_counter() - started)


def answer_unit(step: Step, flight: InFlight, index: int, worker: Worker) -> InFlight:
    """Model `index` of the stage answers the shard's prompts (its worker holds that model)."""
    with _in_shard(step, flight.work.unit):
        if flight.work.rows is None:
            return flight
        step.stage.setup(worker)
        started = time.perf_counter()
        prepared = flight.prepared[index]
        assert prepared is not None
        flight.answers[index] = step.stage.answer(index, prepared)
        flight.prepared[index] = None  # frames are not needed any more: travel light
        flight.seconds += time.perf_counter() - started
        return flight


def finish_unit(run: RunDir, step: Step, flight: InFlight, worker: Worker) -> dict[str, Any]:
    with _in_shard(step, flight.work.unit):
        if flight.work.rows is None:
            assert flight.work.stats is not None
            return flight.work.stats
        started = time.perf_counter()
        answers = [flight.answers[i] for i in range(len(flight.answers))]
        out = step.stage.finish(flight.rows, answers)
        seconds = flight.seconds + time.perf_counter() - started
        return complete(run, step, flight.work, out, seconds, worker)
