"""The callables Ray Data runs for each operator (curation/engine/runners/placement.py).

Rows of the stream are shards, not clips: `unit` (the shard's key), `stats` (JSON: the
statistics of every step this shard has passed in the segment) and, between the parts of a
split stage, `flight` (the pickled prompts and answers so far, curation/engine/shard_task.InFlight).
Workers read their shard's rows from the run's storage and write their output there; only
keys and statistics travel on. A row with an empty key carries statistics only: the shard
it came from has nothing left for later stages (a source whose scenes were all rejected).
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from curation.core.units import Unit
from curation.core.worker import Worker
from curation.engine.global_task import run_global
from curation.engine.runners.placement import Op
from curation.engine.runners.ray_pool import RayPool
from curation.engine.shard_task import (
    InFlight,
    answer_unit,
    finish_unit,
    next_units,
    prepare_unit,
    run_unit,
)
from curation.rundir import RunDir

Row = tuple[str, list[dict[str, Any]], bytes]  # unit key, statistics so far, flight


def _rows(batch: pa.Table) -> list[Row]:
    keys = batch["unit"].to_pylist()
    stats = [json.loads(s) for s in batch["stats"].to_pylist()]
    flights = batch["flight"].to_pylist() if "flight" in batch.column_names else [b""] * len(keys)
    return list(zip(keys, stats, flights, strict=True))


def _emit(rows: list[Row], with_flight: bool) -> Iterator[dict[str, list[Any]]]:
    """One output batch per shard: with a tiny target block size (curation/engine/runners/
    ray_data.py) each becomes its own block, so the next operator spreads them over workers."""
    for key, stats, flight in rows:
        out: dict[str, list[Any]] = {"unit": [key], "stats": [json.dumps(stats)]}
        if with_flight:
            out["flight"] = [flight]
        yield out


def _run_rows(op: Op, run: RunDir, worker: Worker, batch: pa.Table) -> list[Row]:
    """A plain stage on each shard of the batch; after the scene split, its pieces."""
    out: list[Row] = []
    for key, carried, _ in _rows(batch):
        if not key:
            out.append((key, carried, b""))
            continue
        unit = Unit.parse(key)
        stats = run_unit(run, op.step, unit, worker)
        following = next_units(op.step, unit, stats) or [None]
        for i, nxt in enumerate(following):
            out.append((nxt.key if nxt else "", [*carried, stats] if i == 0 else [], b""))
    return out


def task_fn(op: Op, run: RunDir):
    """A plain function for a stage that runs as Ray tasks (named after the stage)."""

    def task(batch: pa.Table) -> Iterator[dict[str, list[Any]]]:
        worker = Worker.from_ray()
        yield from _emit(_run_rows(op, run, worker, batch), with_flight=False)

    def prepare(batch: pa.Table) -> Iterator[dict[str, list[Any]]]:
        out: list[Row] = []
        for key, carried, _ in _rows(batch):
            flight = pickle.dumps(prepare_unit(run, op.step, Unit.parse(key))) if key else b""
            out.append((key, carried, flight))
        yield from _emit(out, with_flight=True)

    fn = prepare if op.part == "prepare" else task
    fn.__name__ = fn.__qualname__ = op.name
    return fn


class StageActor:
    """A worker that holds a stage's models for the whole stage: loaded once, on the first
    shard that has work (a resume past a finished stage loads nothing)."""

    def __init__(self, op: Op, run: RunDir):
        self.op, self.run = op, run
        self.worker = Worker.from_ray()

    def __call__(self, batch: pa.Table) -> Iterator[dict[str, list[Any]]]:
        if self.op.part == "run":
            yield from _emit(_run_rows(self.op, self.run, self.worker, batch), with_flight=False)
            return
        out: list[Row] = []
        for key, carried, blob in _rows(batch):
            if not key:
                out.append((key, carried, b""))
                continue
            flight: InFlight = pickle.loads(blob)
            for index in self.op.calls:
                flight = answer_unit(self.op.step, flight, index, self.worker)
            if self.op.last:
                stats = finish_unit(self.run, self.op.step, flight, self.worker)
                out.append((key, [*carried, stats], b""))
            else:
                out.append((key, carried, pickle.dumps(flight)))
        yield from _emit(out, with_flight=not self.op.last)


def actor_class(op: Op) -> type[StageActor]:
    """StageActor under the operator's name (Ray names operators after their class)."""
    return type(op.name, (StageActor,), {})


def global_task(op: Op, tasks: Op, run: RunDir, keys: list[str]) -> list[dict[str, Any]]:
    """A global stage coordinated by one Ray task, its work done by Ray tasks of the `tasks`
    operator's size; returns every shard's statistics."""
    _log_to_console()  # its phases' progress reaches the driver's console (log_to_driver)
    pool = RayPool(tasks.cpus, tasks.gpus, tasks.memory_gb, progress=False)
    units = [Unit.parse(k) for k in keys]
    return run_global(run, op.step, units, pool, remote=True, task_gpus=tasks.gpus)


def _log_to_console() -> None:
    """The project's INFO lines on this Ray worker's stderr (Ray adds no handler)."""
    logger = logging.getLogger("curation")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
