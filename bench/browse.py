"""Benchmark: `browse` on a synthetic run of 1,000,000 clips.

Writes a run directory with pyarrow in the real layout and schemas (curation/core/schemas.py) into
a temporary folder: 100 input shards, every stage folder from sources to structured with the
columns each stage carries forward (nested boxes and candidates included), a funnel that
rejects at every filter, and instruction pairs for three branches. Then times, each from a
fresh DuckDB as the CLI does (opening the run included, Python start-up not):
- the summary (the funnel counted from the rows);
- a filtered listing: a WHERE clause over the per-clip view, the match count and 20 rows;
beside the same two computed with pyarrow alone (read the columns per shard, count and
filter in Arrow, same per-clip rule), whose answers must agree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.browse.db import RunDB
from curation.browse.layout import open_layout
from curation.browse.summary import funnel
from curation.cli.browse import DEFAULT_COLUMNS
from curation.core import schemas
from stages import registry
from stages.instructions import PAIRS

# (folder, schema, share of its rows kept, reject reasons) after sources and scenes.
FUNNEL = [
    ("sources", schemas.SOURCES, 0.8, ["low_resolution", "unreadable"]),
    ("scenes", schemas.SCENES, 0.95, ["too_short"]),
    ("temporal", schemas.TEMPORAL, 0.6, ["static", "chaotic"]),
    ("clips", schemas.CLIPS, 0.999, ["cut_failed"]),
    ("boxes", schemas.BOXES, 0.7, ["no_human"]),
    ("captions", schemas.CAPTIONS, 0.99, ["caption_failed"]),
    ("dedup", schemas.DEDUP, 0.9, ["duplicate"]),
    ("detailed", schemas.DETAILED, 0.98, ["too_few_candidates"]),
    ("consensus", schemas.CONSENSUS, 0.95, ["unsupported_consensus"]),
    ("structured", schemas.STRUCTURED, 0.99, ["invalid_fields"]),
]
DEFAULT_STAGES = registry.default_folders()  # (stage, folder) in the default order
WHERE = "kept AND duration_s > 5 AND frames_with_face >= 3 AND agreement > 0.8"


def synth(dtype: pa.DataType, n: int, rng: np.random.Generator, pool: list[str]) -> pa.Array:
    """Random values of any schema type (lists hold two items, strings come from a pool)."""
    if pa.types.is_string(dtype):
        return pa.array(np.asarray(pool, dtype=object)[rng.integers(0, len(pool), n)], pa.string())
    if pa.types.is_boolean(dtype):
        return pa.array(rng.random(n) < 0.5)
    if pa.types.is_integer(dtype):
        return pa.array(rng.integers(0, 30, n)).cast(dtype)
    if pa.types.is_floating(dtype):
        return pa.array(rng.random(n) * 10).cast(dtype)
    if pa.types.is_struct(dtype):
        children = [synth(f.type, n, rng, pool) for f in dtype]
        return pa.StructArray.from_arrays(children, fields=list(dtype))
    if pa.types.is_list(dtype):
        items = synth(dtype.value_type, 2 * n, rng, pool)
        return pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), items)
    raise TypeError(f"no synthetic values for {dtype}")


def verdict(
    n: int, keep: float, reasons: list[str], rng: np.random.Generator
) -> dict[str, pa.Array]:
    kept = rng.random(n) < keep
    reason = np.where(
        kept, None, np.asarray(reasons, dtype=object)[rng.integers(0, len(reasons), n)]
    )
    return {"kept": pa.array(kept), "reject_reason": pa.array(reason, pa.string()),
            "reject_detail": pa.array(np.where(kept, None, "synthetic reject"), pa.string())}  # fmt: skip


def write_sharded(
    folder: Path, table: pa.Table, shard: np.ndarray, shards: int, pieces: bool = False
) -> None:
    """Shard k's rows to part-k (source shards) or part-k-00000 (the pieces the stages after
    the scene split work on, one a source shard here)."""
    folder.mkdir(parents=True)
    bounds = np.searchsorted(shard, np.arange(shards + 1))
    for k in range(shards):
        name = f"part-{k:05d}-00000.parquet" if pieces else f"part-{k:05d}.parquet"
        pq.write_table(table.slice(bounds[k], bounds[k + 1] - bounds[k]), folder / name)


def build_run(root: Path, clips: int, shards: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pool = [
        f"synthetic caption {i}: a person talks to another person in a kitchen" for i in range(64)
    ]
    run = root / "bench"
    n_sources = clips // 10
    src_shard = np.arange(n_sources) * shards // n_sources
    ids = pa.array([f"s{i:015x}" for i in range(n_sources)])
    inputs = pa.table(
        {"source_id": ids, "path": pa.array([f"/videos/{i}.mp4" for i in range(n_sources)])}
    )
    write_sharded(run / "inputs", inputs, src_shard, shards)
    table, shard = None, None
    for folder, schema, keep, reasons in FUNNEL:
        if folder == "sources":
            n, shard = n_sources, src_shard
            cols = {"source_id": ids, "path": inputs["path"]}
        elif folder == "scenes":
            n, shard = clips, np.arange(clips) * shards // clips
            cols = {"clip_id": pa.array([f"{i:016x}" for i in range(clips)])}
        else:
            n = table.num_rows
            cols = {name: table[name] for name in table.column_names if name in schema.names}
        for f in schema:
            if f.name not in cols and f.name not in ("kept", "reject_reason", "reject_detail"):
                cols[f.name] = synth(f.type, n, rng, pool)
        cols.update(verdict(n, keep, reasons, rng))
        table = pa.table({f.name: cols[f.name] for f in schema}, schema=schema)
        write_sharded(
            run / folder, table, shard, shards, pieces=folder not in ("sources", "scenes")
        )
        mask = table["kept"].to_numpy(zero_copy_only=False)
        table, shard = (
            table.filter(table["kept"]).drop(["kept", "reject_reason", "reject_detail"]),
            shard[mask],
        )
    for branch in ("face", "body", "interaction"):  # two pairs per structured clip
        n = 2 * table.num_rows
        cols = {f.name: synth(f.type, n, rng, pool) for f in PAIRS}
        cols["clip_id"] = pa.array(np.repeat(table["clip_id"].to_numpy(zero_copy_only=False), 2))
        cols["branch"] = pa.array([branch] * n)
        write_sharded(run / "instructions" / branch, pa.table(cols, schema=PAIRS),
                      np.repeat(shard, 2), shards, pieces=True)  # fmt: skip
    stages = {s: {"folder": f} for s, f in DEFAULT_STAGES}
    (run / "run.json").write_text(
        json.dumps({"run": "bench", "inputs": {"shards": shards}, "stages": stages})
    )
    return run


def arrow_summary(run: Path) -> list[tuple[str, int, int, dict[str, int]]]:
    out = []
    for _, folder in DEFAULT_STAGES:
        t = pq.ParquetDataset(run / folder).read(columns=["kept", "reject_reason"])
        rejected = pc.value_counts(t.filter(pc.invert(t["kept"]))["reject_reason"]).to_pylist()
        out.append(
            (
                folder,
                t.num_rows,
                pc.sum(t["kept"]).as_py(),
                {r["values"]: r["counts"] for r in rejected},
            )
        )
    return out


def arrow_query(run: Path) -> int:
    """Clips matching WHERE with pyarrow: the same per-clip rule as curation/browse/db.py."""
    folders = [f for _, f in DEFAULT_STAGES[1:]]
    expr = (pc.field("kept") & (pc.field("duration_s") > 5) & (pc.field("frames_with_face") >= 3)
            & (pc.field("agreement") > 0.8))  # fmt: skip
    matched = 0
    for i, folder in enumerate(folders):
        names = pq.read_schema(next((run / folder).glob("*.parquet"))).names
        if "agreement" not in names:  # the clause needs columns this folder does not have
            continue
        later = (
            {p.name for p in (run / folders[i + 1]).glob("*.parquet")}
            if i + 1 < len(folders)
            else set()
        )
        for part in sorted((run / folder).glob("*.parquet")):
            t = pq.read_table(part, columns=["kept", "duration_s", "frames_with_face", "agreement"])
            if part.name in later:
                t = t.filter(pc.invert(t["kept"]))
            matched += t.filter(expr).num_rows
    return matched


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=1_000_000)
    ap.add_argument("--shards", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3, help="median of this many runs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-browse-") as tmp:
        start = time.perf_counter()
        run = build_run(Path(tmp), args.clips, args.shards)
        size = sum(p.stat().st_size for p in run.rglob("*.parquet"))
        print(f"synthetic run: {args.clips:,} clips, {args.shards} shards a folder, "
              f"{size / 1e6:.0f} MB of Parquet, written in {time.perf_counter() - start:.1f} s; "
              f"{os.cpu_count()} CPU cores")  # fmt: skip

        def summary():
            return funnel(RunDB(open_layout(run)))

        def query():
            db = RunDB(open_layout(run))
            cols = [c for c in DEFAULT_COLUMNS if c in db.columns]
            return db.select_clips(WHERE, cols, "clip_id", 20)

        summary_s, s = timed(summary, args.repeat)
        query_s, (count, _, rows) = timed(query, args.repeat)
        arrow_summary_s, a = timed(lambda: arrow_summary(run), args.repeat)
        arrow_query_s, arrow_count = timed(lambda: arrow_query(run), args.repeat)
    ours = [(x["folder"], x["rows_out"], x["kept"], x["rejected"]) for x in s["stages"]]
    assert ours == a, f"summaries differ:\n{ours}\n{a}"
    assert count == arrow_count, f"query counts differ: {count} vs {arrow_count}"
    print(f"{'':<34} {'browse (DuckDB)':>16} {'pyarrow alone':>14}")
    print(
        f"{'summary: funnel of ' + str(len(ours)) + ' stages':<34} {summary_s:>15.3f}s {arrow_summary_s:>13.3f}s"
    )
    print(
        f"{'query: ' + format(count, ',') + ' clips match':<34} {query_s:>15.3f}s {arrow_query_s:>13.3f}s"
    )
    print(f"WHERE {WHERE}; {len(rows)} rows listed")
    print(f"RESULT bench=browse rows={args.clips} summary_s={summary_s:.3f} query_s={query_s:.3f}")


if __name__ == "__main__":
    main()
