"""The stage contract shared by every pipeline stage: the only way the engine knows a stage.

A stage is a keyword-only dataclass holding its config section (`cfg`: the section's class is
the type of that field, declared in the stage's own module) and whatever the run supplies (where
clips go, see `build`). It declares its name (also its config section's key), the Parquet folder
it writes, that folder's schema, the columns it reads, the resources one worker needs and its
place in the default order. `stages/registry.py` collects these declarations into the one table
that config validation, the pipeline, browse and the report read.

`setup(worker)` runs once inside the worker (load models there, never in the driver, on the
device the worker was given) and `process()` turns a batch of input rows (an Arrow table) into
a batch of output rows; `teardown()` lets models go when the stage is done. A stage knows
nothing of Ray: the local and the Ray runner call exactly these methods.

Two kinds of stage change how a runner schedules them, each through hooks with defaults here:
- a stage whose shard work is split into parts (`model_groups()` not empty: the stages that ask
  models, stages/model_stage.py): `prepare` in CPU workers, `answer` once per model in the
  workers that hold it, `finish` writes the rows; `process()` does the three in turn;
- a global stage (`is_global`: dedup) decides over every shard at once (`decide`/`decided`),
  its work handed out as tasks of `task_resources`.

Filtering stages keep every row: a rejected row has `kept=False` and a `reject_reason`.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

import pyarrow as pa

from curation.core import schemas
from curation.core.config import Resources, Section, TaskResources
from curation.core.pool import Pool
from curation.core.units import Unit
from curation.core.worker import GpuNeed, Worker
from curation.rundir import RunDir

T = TypeVar("T")
R = TypeVar("R")


class GlobalJob(Protocol):
    """What a global stage decides over, as the engine hands it (curation/engine/global_task.py):
    the run, the shards of its input in blocks, and where its tasks run."""

    run: RunDir
    blocks: tuple[tuple[Unit, ...], ...]  # whole shards, about `rows_a_task` rows a block
    task_gpus: float  # GPUs each of the stage's tasks reserved

    def read(self, unit: Unit, columns: list[str]) -> pa.Table:
        """A shard's kept input rows, only `columns` (those it has)."""
        ...

    def input_type(self, unit: Unit, column: str) -> pa.DataType: ...

    def worker(self) -> Worker:
        """The worker a task of the stage runs in."""
        ...


@dataclass(frozen=True)
class ModelGroup:
    """Models of a split stage that share one pool of workers (stages/model_stage.py)."""

    label: str  # how the runner names the pool ("" for the stage's own name)
    calls: tuple[int, ...]  # which of the stage's models these workers hold
    gpu_need: GpuNeed  # what `resources.gpus: auto` reserves for one of them


@dataclass(kw_only=True)
class Stage:
    name: ClassVar[str]  # also the key of its config section in a profile
    output_folder: ClassVar[str]
    # Its place in `make curate`'s default order (the order of profiles without `stages:`);
    # None: it runs only where a profile lists it.
    order: ClassVar[float | None] = None
    # False for a stage that its own command runs over a finished run (instructions): it is
    # never listed in `stages:`.
    curate: ClassVar[bool] = True
    # The output schema in the default stage order. Stages that carry their input forward also
    # declare the columns they add, and `bind()` rebuilds the schema for the configured order.
    schema: ClassVar[pa.Schema]
    adds: ClassVar[list[pa.Field] | None] = None
    reads: ClassVar[tuple[str, ...]]
    # Columns used when the input has them (a global stage holds only reads + also_reads).
    also_reads: ClassVar[tuple[str, ...]] = ()
    # True when setup() is expensive (models): the Ray runner then keeps warm actor pools.
    uses_actor: ClassVar[bool] = False
    # True when the stage must see every shard's rows at once (dedup): it runs once, after
    # the previous stage has finished all shards, and its output is split back into shards.
    # Such a stage implements decide() and decided() instead of process().
    is_global: ClassVar[bool] = False
    # A global stage's tasks take whole shards, about this many rows a task, when the config
    # section has no block_rows.
    block_rows: ClassVar[int] = 200_000
    # True for the one-to-many scene split: its kept rows are re-cut into pieces of
    # run.clips_per_shard clips, the shards of every stage after it (curation/core/units.py).
    reshards: ClassVar[bool] = False
    # Reject reasons worth another try: a re-run re-processes exactly those rows.
    retryable_reasons: ClassVar[frozenset[str]] = frozenset()
    # Rows per process() call when the config section has no batch_size.
    batch_rows: ClassVar[int] = 16

    cfg: Section

    # Fields named with a leading underscore hold what a worker loads (models, clients,
    # locks): they never travel with the stage to a Ray worker, which starts them afresh.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for f in dataclasses.fields(self):
            if f.name.startswith("_") and f.name not in state:
                fresh = f.default_factory if f.default_factory is not dataclasses.MISSING else None
                setattr(self, f.name, fresh() if fresh else f.default)

    # --- the declaration the stage table reads (stages/registry.py) ---------------------------
    @classmethod
    def config_class(cls) -> type[Section]:
        """The class of its config section: the declared type of `cfg`."""
        return typing.get_type_hints(cls)["cfg"]

    @classmethod
    def build(cls, cfg: Section, run: RunDir) -> Stage:
        """The stage for a run (a stage that writes files under the run overrides this)."""
        return cls(cfg=cfg)

    @classmethod
    def check_config(cls, config: Any) -> None:
        """Checks across config sections when the stage is configured (raise ValueError)."""

    # --- resources ------------------------------------------------------------------------------
    @property
    def resources(self) -> Resources:
        return self.cfg.resources  # type: ignore[attr-defined]

    @property
    def prepare_resources(self) -> Resources:
        """A split stage: what one worker that prepares its shards needs."""
        return self.resources

    @property
    def task_resources(self) -> TaskResources:
        """A global stage: what each task it hands out needs."""
        raise NotImplementedError(f"{self.name} is not a global stage")

    @property
    def batch_size(self) -> int:
        return int(getattr(self.cfg, "batch_size", self.batch_rows))

    @property
    def rows_a_task(self) -> int:
        return int(getattr(self.cfg, "block_rows", self.block_rows))

    def gpu_need(self) -> GpuNeed:
        """What `resources.gpus: auto` reserves for one worker of this stage."""
        return GpuNeed()

    def model_groups(self) -> list[ModelGroup]:
        """A stage whose shard work is split into parts lists its groups of models, each for a
        pool of workers (the last one also finishes the shard); [] (most stages): one part."""
        return []

    def bind(self, previous: pa.Schema) -> None:
        """Fit the output schema to the stage before this one (config decides the order)."""
        if self.adds is not None:
            self.schema = schemas.extend(previous, self.adds)  # type: ignore[misc]

    def setup(self, worker: Worker) -> None:
        """Load what the stage needs; called once per worker before any batch."""

    def teardown(self) -> None:
        """Let go of models and caches; the stage is done in this worker."""

    def preflight(self) -> None:
        """Cheap checks in the driver before any work starts (e.g. that a model can be had)."""

    def process(self, batch: pa.Table) -> pa.Table:
        raise NotImplementedError

    # --- a split stage's parts (model_groups() not empty) ---------------------------------------
    def prepare(self, rows: list[dict[str, Any]]) -> list[Any]:
        """What each model is given, one entry per model (no model needed to make it)."""
        raise NotImplementedError

    def answer(self, index: int, prepared: Any) -> Any:
        """Model `index` answers what `prepare` made for it (its worker holds that model)."""
        raise NotImplementedError

    def finish(self, rows: list[dict[str, Any]], answers: list[Any]) -> pa.Table:
        """The output rows from every model's answers (`answers[i]`: model i's)."""
        raise NotImplementedError

    def decide(self, job: GlobalJob, pool: Pool) -> list[Any]:
        """A global stage: one small, picklable decision per shard of `job`, in order, its
        work handed to `pool` as tasks over `job.blocks`."""
        raise NotImplementedError

    def decided(self, rows: pa.Table, decision: Any) -> pa.Table:
        """A global stage: its columns and verdict for one shard's input rows."""
        raise NotImplementedError

    # --- helpers for implementations ----------------------------------------------------------
    def map_rows(self, fn: Callable[[T], R], rows: Sequence[T], threads: int) -> list[R]:
        """fn over rows, in order, `threads` at a time: for work that waits on a subprocess."""
        if threads <= 1 or len(rows) <= 1:
            return [fn(r) for r in rows]
        with ThreadPoolExecutor(max_workers=min(threads, len(rows))) as pool:
            return list(pool.map(fn, rows))

    def table(self, rows: list[dict[str, Any]]) -> pa.Table:
        """Build this stage's output table; a row missing a required column is a bug."""
        required = [f.name for f in self.schema if not f.nullable]
        for row in rows:
            missing = [c for c in required if row.get(c) is None]
            if missing:
                raise ValueError(f"{self.name}: output row lacks {missing}: {row}")
        return pa.Table.from_pylist(rows, schema=self.schema)


def kept() -> dict[str, Any]:
    return {"kept": True, "reject_reason": None, "reject_detail": None}


def rejected(reason: str, detail: str) -> dict[str, Any]:
    return {"kept": False, "reject_reason": reason, "reject_detail": detail}


# A stage may report counts of its own beside the rows it returns (e.g. how many clips an
# LLM failed on): they travel in the table's metadata and end up in the shard's statistics.
EXTRA_KEY = b"curation.extra"


def with_extra(table: pa.Table, extra: dict[str, Any]) -> pa.Table:
    meta = dict(table.schema.metadata or {})
    meta[EXTRA_KEY] = json.dumps(extra, sort_keys=True).encode()
    return table.replace_schema_metadata(meta)


def pop_extra(table: pa.Table) -> tuple[pa.Table, dict[str, Any]]:
    meta = dict(table.schema.metadata or {})
    extra = json.loads(meta.pop(EXTRA_KEY)) if EXTRA_KEY in meta else {}
    return table.replace_schema_metadata(meta or None), extra
