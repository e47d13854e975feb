"""Benchmark: the dedup stage over 10,000,000 caption embeddings on a local multi-node Ray cluster.

The run directory holds what the embed stage writes at that scale: `--n` clips in shards of
`--shard-rows`, each with a float16 384-d caption vector (synthesised like bench/dedup.py:
vectors around `--topics` topic directions, 5% of them planted duplicates of another clip
of their shard at a cosine drawn from 0.52-0.97, the range of real paraphrases; `--topics
0`: structureless). The shards are written by Ray tasks; then the dedup stage runs exactly
as `make curate` runs it on a cluster: one coordinating Ray task, its work (index, sample,
K-means, assign, per-group pair search, names, shard writes) as Ray tasks on `--workers`
worker nodes of one CPU each.

Measured in one run:
- wall time of the stage (synthesis not included);
- the peak resident memory of every process (the bench, Ray's daemons and workers), sampled
  every 0.2 s: `peak_rss_bytes` is the largest, `max_task_rss_bytes` the largest of a worker
  running a dedup task;
- recall and precision of the pairs the stage found (dedup/_pairs/similar_pairs.parquet) against
  exact all-pairs search (blocked matrix products) on a subset: `--subset-shards` whole
  shards, drawn at random, with every pair inside them;
- beside it, the baseline: exact all-pairs on the subset, and that time extrapolated to n.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import ray
from dedup import naive_pairs, plant  # bench/dedup.py: the same synthetic data, exact search
from ray import cloudpickle
from ray.cluster_utils import Cluster

from curation.core.units import Unit
from curation.dedup.config import DedupConfig
from curation.engine.runners.ray_data import RayRunner
from curation.engine.shard_task import Step
from curation.engine.totals import Totals
from curation.rundir import RunDir
from stages.dedup import PAIRS, DedupStage
from stages.embed import EMBEDDING, embedding_array, read_embeddings

INPUT = "embeddings"
SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field(EMBEDDING, pa.list_(pa.float16())),
        pa.field("embed_model", pa.string()),
        pa.field("kept", pa.bool_(), nullable=False),
        pa.field("reject_reason", pa.string()),
        pa.field("reject_detail", pa.string()),
    ]
)


def shard_vectors(shard: int, rows: int, dim: int, topics: int, seed: int) -> np.ndarray:
    """One shard's vectors (float32, unit length): the same for the same arguments."""
    rng = np.random.default_rng([seed, shard])
    emb = rng.standard_normal((rows, dim), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    if topics:
        centers = np.random.default_rng([seed, 1 << 30]).standard_normal((topics, dim))
        centers = (centers / np.linalg.norm(centers, axis=1, keepdims=True)).astype(np.float32)
        emb += centers[rng.integers(0, topics, rows)] * np.float32(0.58)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    plant(emb, rng)
    return emb[rng.permutation(rows)]


def write_shards(args: tuple[RunDir, list[int], int, int, int, int]) -> int:
    run, shards, rows, dim, topics, seed = args
    for shard in shards:
        emb = shard_vectors(shard, rows, dim, topics, seed)
        ids = [f"c{shard * rows + r:010d}" for r in range(rows)]
        table = pa.table(
            {
                "clip_id": ids,
                EMBEDDING: embedding_array(emb, np.ones(rows, bool), "float16"),
                "embed_model": pa.array(["synthetic"] * rows),
                "kept": np.ones(rows, bool),
                "reject_reason": pa.nulls(rows, pa.string()),
                "reject_detail": pa.nulls(rows, pa.string()),
            },
            schema=SCHEMA,
        )
        stats = {"stage": "embed", "shard": Unit(shard, 0).key, "kept": rows, "rows_in": rows}
        run.write_unit(INPUT, Unit(shard, 0), table, stats)
    return len(shards)


class MemorySampler:
    """Peak RSS of this process and of every Ray process, by pid, sampled in a thread."""

    def __init__(self, every_s: float = 0.2):
        self.every_s, self.peak, self.tasks = every_s, 0, 0
        self.by_kind: dict[str, int] = {}  # peak RSS by Ray task name (dedup_assign, ...)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for proc in psutil.process_iter(["cmdline", "memory_info"]):
                cmd = " ".join(proc.info["cmdline"] or [])
                mem = proc.info["memory_info"]
                if mem is None or not ("ray" in cmd or proc.pid == psutil.Process().pid):
                    continue
                self.peak = max(self.peak, mem.rss)
                if cmd.startswith("ray::dedup"):  # the coordinator, or a task of a phase
                    self.tasks = max(self.tasks, mem.rss)
                    kind = cmd.split()[0].removeprefix("ray::")
                    self.by_kind[kind] = max(self.by_kind.get(kind, 0), mem.rss)
            self._stop.wait(self.every_s)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--shard-rows", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="worker nodes, one CPU each")
    parser.add_argument("--subset-shards", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=None, help="run root (default: a temporary folder)")
    parser.add_argument("--set", action="append", default=[], help="dedup.FIELD=VALUE")
    args = parser.parse_args()

    cfg = DedupConfig(**{k.removeprefix("dedup."): v for k, v in
                         (s.split("=", 1) for s in args.set)})  # fmt: skip
    root = Path(args.root or tempfile.mkdtemp(prefix="dedup-scale-"))
    shards = args.n // args.shard_rows
    n = shards * args.shard_rows
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "include_dashboard": False,
            "object_store_memory": 1 << 30,
        },  # fmt: skip
    )
    try:
        for _ in range(args.workers):
            cluster.add_node(num_cpus=1, object_store_memory=1 << 30)
        cluster.wait_for_nodes()
        cloudpickle.register_pickle_by_value(sys.modules["dedup"])  # workers lack bench/
        ray.init(address=cluster.address, log_to_driver=True)  # the phases
        run = RunDir(root, "scale")

        started = time.perf_counter()
        per_task = max(1, shards // (4 * args.workers))
        chunks = [list(range(s, min(shards, s + per_task))) for s in range(0, shards, per_task)]
        task = ray.remote(write_shards).options(num_cpus=1)
        ray.get([task.remote((run, c, args.shard_rows, args.dim, args.topics, args.seed))
                 for c in chunks])  # fmt: skip
        synth_s = time.perf_counter() - started
        print(f"synthesised {n} x {args.dim} float16 embeddings in {shards} shards, "
              f"{synth_s:.1f} s", flush=True)  # fmt: skip

        stage = DedupStage(cfg=cfg)
        stage.bind(SCHEMA)
        step = Step(stage, INPUT, per_piece=args.shard_rows)
        units = [Unit(s, 0) for s in range(shards)]
        runner = RayRunner(cluster.address, progress=False)
        runner.prepare([step])
        totals = Totals()
        with MemorySampler() as memory:
            started = time.perf_counter()
            runner.run([step], run, units, totals)
            wall = time.perf_counter() - started
        peak = max(memory.peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        dropped = totals.get("dedup").rejected.get("duplicate", 0)

        # Recall and precision on whole shards: every pair inside them, found or exact.
        rng = np.random.default_rng(args.seed + 1)
        picked = np.sort(rng.choice(shards, size=min(shards, args.subset_shards), replace=False))
        emb = np.concatenate([read_embeddings(run.read_unit(INPUT, Unit(int(s), 0),
                              [EMBEDDING])[EMBEDDING])[0] for s in picked])  # fmt: skip
        rows = (picked[:, None] * args.shard_rows + np.arange(args.shard_rows)).reshape(-1)
        position = {int(r): k for k, r in enumerate(rows)}
        found_pairs = run.storage.read_table(f"{stage.output_folder}/{PAIRS}")
        a = [int(c[1:]) for c in found_pairs["clip_id"].to_pylist()]
        b = [int(c[1:]) for c in found_pairs["other_clip_id"].to_pylist()]
        found = {(position[x], position[y]) for x, y in zip(a, b, strict=True)
                 if x in position and y in position}  # fmt: skip
        started = time.perf_counter()
        truth = naive_pairs(emb, cfg.threshold)
        exact_s = time.perf_counter() - started
        hits = len(found & truth)
        recall = hits / len(truth) if truth else 1.0
        precision = hits / len(found) if found else 1.0
    finally:
        ray.shutdown()
        cluster.shutdown()
        if not args.root:
            shutil.rmtree(root, ignore_errors=True)

    extrapolated = exact_s * (n / len(emb)) ** 2
    print(f"\n{'measurement':<52} {'dedup stage':>14} {'exact search':>14}")
    print(f"{'clips':<52} {n:>14d} {len(emb):>14d}")
    print(f"{'wall s (exact: extrapolated to all clips)':<52} {wall:>14.1f} {extrapolated:>14.0f}")
    print(f"{'similar pairs found (in the subset)':<52} {len(found):>14d} {len(truth):>14d}")
    print(f"{'clips marked duplicate':<52} {dropped:>14d}")
    print(f"{'peak RSS of any process, GiB':<52} {peak / 2**30:>14.2f}")
    print(f"{'peak RSS of a dedup task, GiB':<52} {memory.tasks / 2**30:>14.2f}")
    for kind, rss in sorted(memory.by_kind.items()):
        print(f"{'  ' + kind + ', GiB':<52} {rss / 2**30:>14.2f}")
    print(f"{'recall on the subset':<52} {recall:>14.4f}")
    print(f"{'precision on the subset':<52} {precision:>14.4f}")
    print("goals: wall <= 900 s, peak RSS <= 6 GiB, recall >= 0.99, precision >= 0.99")
    print(
        f"RESULT bench=dedup_scale n={n} threshold={cfg.threshold} wall_s={wall:.1f} "
        f"peak_rss_bytes={peak} max_task_rss_bytes={memory.tasks} recall={recall:.4f} "
        f"precision={precision:.4f} workers={args.workers} topics={args.topics} "
        f"synth_s={synth_s:.1f} exact_subset_s={exact_s:.2f}"
    )


if __name__ == "__main__":
    main()
