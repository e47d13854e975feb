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


def run_shard(stage: Stage, run: RunDir, input_folder: str, shard: int) -> dict[str, Any]:
    target = run.shard_path(stage.output_folder, shard)
    if target.exists():
        return read_stats(target)
    started = time.perf_counter()
    rows = kept_rows(pq.read_table(run.shard_path(input_folder, shard)))
    missing = [c for c in stage.reads if c not in rows.column_names]
    if missing:
        raise ValueError(f"stage {stage.name}: input folder {input_folder} lacks columns {missing}")
    parts = [
        stage.process(rows.slice(i, stage.batch_size))
        for i in range(0, rows.num_rows, stage.batch_size)
    ]
    out = pa.concat_tables(parts) if parts else stage.schema.empty_table()
    if not out.schema.equals(stage.schema):
        raise TypeError(f"stage {stage.name} returned a table that does not match its schema")
    stats = shard_stats(stage, shard, rows.num_rows, out, time.perf_counter() - started)
    write_table(target, out, stats)
    return stats
