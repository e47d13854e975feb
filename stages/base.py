"""The stage contract shared by every pipeline stage.

A stage is a keyword-only dataclass holding its config section (`cfg`, declared once in
curation/config*.py) and whatever the run supplies (where clips go). It declares the Parquet
folder it writes, that folder's schema, the columns it reads and the resources one worker
needs. `setup(worker)` runs once inside the worker (load models there, never in the driver,
on the device the worker was given) and `process()` turns a batch of input rows (an Arrow
table) into a batch of output rows; `teardown()` lets models go when the stage is done. A
stage knows nothing of Ray: the local and the Ray runner call exactly these methods.

Filtering stages keep every row: a rejected row has `kept=False` and a `reject_reason`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import pyarrow as pa

from curation import schemas
from curation.config_base import Resources, Section
from curation.worker import GpuNeed, Worker

if TYPE_CHECKING:
    from curation.global_task import GlobalJob
    from curation.pool import Pool

T = TypeVar("T")
R = TypeVar("R")


@dataclass(kw_only=True)
class Stage:
    name: ClassVar[str]
    output_folder: ClassVar[str]
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
    # run.clips_per_shard clips, the shards of every stage after it (curation/units.py).
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

    @property
    def resources(self) -> Resources:
        return self.cfg.resources  # type: ignore[attr-defined]

    @property
    def batch_size(self) -> int:
        return int(getattr(self.cfg, "batch_size", self.batch_rows))

    @property
    def rows_a_task(self) -> int:
        return int(getattr(self.cfg, "block_rows", self.block_rows))

    def gpu_need(self) -> GpuNeed:
        """What `resources.gpus: auto` reserves for one worker of this stage."""
        return GpuNeed()

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

    def decide(self, job: GlobalJob, pool: Pool) -> list[Any]:
        """A global stage: one small, picklable decision per shard of `job`, in order, its
        work handed to `pool` as tasks over `job.blocks` (curation/global_task.py)."""
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
