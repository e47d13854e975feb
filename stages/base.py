"""The stage contract shared by every pipeline stage.

A stage is a keyword-only dataclass whose fields are its settings. It declares the Parquet
folder it writes, that folder's schema, the columns it reads and the resources one worker
needs. `setup()` runs once inside the worker (load models there, never in the driver) and
`process()` turns a batch of input rows (an Arrow table) into a batch of output rows. A stage
knows nothing of Ray: the local and the Ray runner call exactly these methods.

Filtering stages keep every row: a rejected row has `kept=False` and a `reject_reason`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from curation import schemas
from curation.config import Resources


@dataclass(kw_only=True)
class Stage:
    name: ClassVar[str]
    output_folder: ClassVar[str]
    # The output schema in the default stage order. Stages that carry their input forward also
    # declare the columns they add, and `bind()` rebuilds the schema for the configured order.
    schema: ClassVar[pa.Schema]
    adds: ClassVar[list[pa.Field] | None] = None
    reads: ClassVar[tuple[str, ...]]
    # True when setup() is expensive (models): the Ray runner then keeps warm actor pools.
    uses_actor: ClassVar[bool] = False
    # True when the stage must see every shard's rows at once (dedup): it runs once, after
    # the previous stage has finished all shards, and its output is split back into shards.
    is_global: ClassVar[bool] = False
    # Reject reasons worth another try: a re-run re-processes exactly those rows.
    retryable_reasons: ClassVar[frozenset[str]] = frozenset()

    resources: Resources
    batch_size: int = 16

    def bind(self, previous: pa.Schema) -> None:
        """Fit the output schema to the stage before this one (config decides the order)."""
        if self.adds is not None:
            self.schema = schemas.extend(previous, self.adds)  # type: ignore[misc]

    def setup(self) -> None:
        """Load what the stage needs; called once per worker before any batch."""

    def preflight(self) -> None:
        """Cheap checks in the driver before any work starts (e.g. that a model can be had)."""

    def process(self, batch: pa.Table) -> pa.Table:
        raise NotImplementedError

    # --- helpers for implementations ----------------------------------------------------------
    def map_rows(
        self, fn: Callable[[dict[str, Any]], Any], rows: list[dict[str, Any]], threads: int
    ) -> list[Any]:
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
