"""The unit of work both runners execute: one stage on one shard.

A stage's shard k is made from the kept rows of the previous folder's shard k, so shards of
different stages never mix and a finished shard (its file exists) is simply skipped. The
output and its statistics (rows in/out, kept, rejected by reason, seconds) are written in one
atomic file; run.json is assembled from those files by the driver.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.rundir import RunDir, read_stats, write_table
from stages.base import Stage


def kept_rows(table: pa.Table) -> pa.Table:
    if "kept" not in table.column_names:
        return table
    return table.filter(pc.equal(table["kept"], True))


def shard_stats(
    stage: Stage, shard: int, rows_in: int, out: pa.Table, seconds: float
) -> dict[str, Any]:
    reasons = Counter(r for r in out["reject_reason"].to_pylist() if r is not None)
    return {
        "stage": stage.name,
        "shard": shard,
        "rows_in": rows_in,
        "rows_out": out.num_rows,
        "kept": out.num_rows - sum(reasons.values()),
        "rejected": dict(sorted(reasons.items())),
        "seconds": round(seconds, 4),
    }


def _process(stage: Stage, rows: pa.Table) -> pa.Table:
    missing = [c for c in stage.reads if c not in rows.column_names]
    if missing:
        raise ValueError(f"stage {stage.name}: input lacks columns {missing}")
    size = min(stage.batch_size, max(1, rows.num_rows))
    parts = [stage.process(rows.slice(i, size)) for i in range(0, rows.num_rows, size)]
    out = pa.concat_tables(parts) if parts else stage.schema.empty_table()
    if not out.schema.equals(stage.schema):
        raise TypeError(f"stage {stage.name} returned a table that does not match its schema")
    return out


def merge_retried(previous: list[dict[str, Any]], redone: pa.Table, schema: pa.Schema) -> pa.Table:
    """The previous rows of a shard, each replaced by its re-done version where there is one."""
    fresh = {r["clip_id"]: r for r in redone.to_pylist()}
    return pa.Table.from_pylist([fresh.get(r["clip_id"], r) for r in previous], schema=schema)


def _retry_failed(stage: Stage, run: RunDir, input_folder: str, shard: int) -> dict[str, Any]:
    """Re-process the rows of a finished shard that were rejected for a retryable reason."""
    target = run.shard_path(stage.output_folder, shard)
    old = pq.read_table(target)
    reasons = old["reject_reason"].to_pylist()
    redo_ids = {
        cid
        for cid, r in zip(old["clip_id"].to_pylist(), reasons, strict=True)
        if r in stage.retryable_reasons
    }
    stats = read_stats(target)
    if not redo_ids:
        return stats
    started = time.perf_counter()
    rows = kept_rows(pq.read_table(run.shard_path(input_folder, shard)))
    redo = rows.filter(pc.is_in(rows["clip_id"], pa.array(sorted(redo_ids))))
    out = merge_retried(old.to_pylist(), _process(stage, redo), stage.schema)
    seconds = stats.get("seconds", 0.0) + time.perf_counter() - started
    stats = shard_stats(stage, shard, stats.get("rows_in", rows.num_rows), out, seconds)
    write_table(target, out, stats)
    return stats


def run_shard(stage: Stage, run: RunDir, input_folder: str, shard: int) -> dict[str, Any]:
    target = run.shard_path(stage.output_folder, shard)
    if target.exists():
        if stage.retryable_reasons:
            return _retry_failed(stage, run, input_folder, shard)
        return read_stats(target)
    started = time.perf_counter()
    rows = kept_rows(pq.read_table(run.shard_path(input_folder, shard)))
    out = _process(stage, rows)
    stats = shard_stats(stage, shard, rows.num_rows, out, time.perf_counter() - started)
    write_table(target, out, stats)
    return stats


def run_global(stage: Stage, run: RunDir, input_folder: str, shards: list[int]) -> None:
    """A stage over all shards' kept rows at once; its output is written back per shard.

    Global stages are deterministic functions of their whole input, so when a killed run left
    some output shards behind, recomputing and writing only the missing ones is consistent.
    """
    todo = [s for s in shards if not run.shard_path(stage.output_folder, s).exists()]
    if not todo:
        return
    started = time.perf_counter()
    # Every shard of the run, not only those still to write: the result depends on all rows.
    shards = sorted(run.finished_shards(input_folder))
    everything = [kept_rows(pq.read_table(run.shard_path(input_folder, s))) for s in shards]
    sizes = [t.num_rows for t in everything]
    rows = pa.concat_tables([t.replace_schema_metadata(None) for t in everything])
    stage.setup()
    out = _process(stage, rows)
    if out.num_rows != rows.num_rows:
        raise ValueError(f"global stage {stage.name} must return one row per input row")
    seconds = (time.perf_counter() - started) / max(1, len(shards))
    offset = 0
    for shard, size in zip(shards, sizes, strict=True):
        part = out.slice(offset, size)
        offset += size
        if shard in todo:
            write_table(
                run.shard_path(stage.output_folder, shard),
                part,
                shard_stats(stage, shard, size, part, seconds),
            )
