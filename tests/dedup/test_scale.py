"""The dedup stage's distributed path (curation/dedup/scale.py under stages/dedup.py) on real
embeddings shards: the same kept sets and duplicate_of as the in-process search of the same
vectors, in this process and on a real Ray cluster of 1, 2 and 4 worker nodes, and after a
worker is killed mid-dedup."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import psutil
import pyarrow as pa
import pytest
from ray_cluster import local_cluster

from curation.core.pool import SerialPool
from curation.core.units import Unit
from curation.dedup.config import DedupConfig
from curation.dedup.groups import deduplicate
from curation.dedup.scale import SearchParams
from curation.engine.global_task import run_global
from curation.engine.runners.ray_data import RayRunner
from curation.engine.shard_task import Step
from curation.engine.totals import Totals
from curation.rundir import RunDir
from stages.dedup import PAIRS, DedupStage
from stages.embed import EMBEDDING, embedding_array

SHARDS, ROWS, DIM = 16, 600, 384
# Small enough to run in seconds, large enough for every part of the plan: 4 groups,
# 48 fine partitions, 8 blocks of 2 shards.
CFG = DedupConfig(exact_max=1000, partition_size=200, coarse_size=3000, train_sample=1000,
                  block_rows=2 * ROWS)  # fmt: skip
SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("duration_s", pa.float64()),
        pa.field(EMBEDDING, pa.list_(pa.float16())),
        pa.field("embed_model", pa.string()),
        pa.field("kept", pa.bool_(), nullable=False),
        pa.field("reject_reason", pa.string()),
        pa.field("reject_detail", pa.string()),
    ]
)


def vectors(seed: int = 0) -> np.ndarray:
    """Clustered unit vectors, 5% planted near-duplicates at a cosine of 0.6-0.97."""
    rng = np.random.default_rng(seed)
    n = SHARDS * ROWS
    centers = rng.standard_normal((20, DIM)).astype(np.float32)
    emb = rng.standard_normal((n, DIM)).astype(np.float32) / np.sqrt(DIM) * 1.4
    emb += centers[rng.integers(0, 20, n)] / np.sqrt(DIM)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    plants = rng.choice(n, n // 20, replace=False)
    source = rng.integers(0, n, len(plants))
    cosine = rng.uniform(0.6, 0.97, (len(plants), 1)).astype(np.float32)
    noise = rng.standard_normal((len(plants), DIM)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    emb[plants] = emb[source] * cosine + noise * np.sqrt(1 - cosine**2)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb.astype(np.float16).astype(np.float32)  # as the embed stage stores them


def write_run(root, emb: np.ndarray) -> tuple[RunDir, Step, list[Unit]]:
    run = RunDir(root, "scale")
    units = [Unit(s, k) for s in range(SHARDS // 4) for k in range(4)]
    for s, unit in enumerate(units):
        part = emb[s * ROWS : (s + 1) * ROWS]
        present = np.ones(ROWS, bool)
        present[s % 7 :: 97] = False  # clips without a caption: no vector, never judged
        present[:] = present & (s not in (5, 6, 7))  # shards, and a whole block, without one
        table = pa.table(
            {
                "clip_id": [f"clip{s * ROWS + r:06d}" for r in range(ROWS)],
                "duration_s": np.random.default_rng(s).uniform(2, 10, ROWS),
                EMBEDDING: embedding_array(part[present], present, "float16"),
                "embed_model": pa.array(["m" if p else None for p in present], pa.string()),
                "kept": np.ones(ROWS, bool),
                "reject_reason": pa.nulls(ROWS, pa.string()),
                "reject_detail": pa.nulls(ROWS, pa.string()),
            },
            schema=SCHEMA,
        )
        run.write_unit("embeddings", unit, table, {"stage": "embed", "shard": unit.key})
    stage = DedupStage(cfg=CFG)
    stage.bind(SCHEMA)
    return run, Step(stage, "embeddings", per_piece=ROWS), units


def verdicts(run: RunDir) -> dict[str, tuple[bool, str | None]]:
    rows = run.read_folder("dedup").to_pylist()
    return {r["clip_id"]: (r["kept"], r["duplicate_of"]) for r in rows}


@pytest.fixture(scope="module")
def emb() -> np.ndarray:
    return vectors()


@pytest.fixture(scope="module")
def reference(emb, tmp_path_factory) -> dict[str, tuple[bool, str | None]]:
    """The in-process search of the same vectors, mapped back to clip ids."""
    run, _, units = write_run(tmp_path_factory.mktemp("ref"), emb)
    table = pa.concat_tables([run.read_unit("embeddings", u) for u in units])
    present = ~np.asarray(table["embed_model"].is_null().to_numpy(zero_copy_only=False))
    ids = np.array(table["clip_id"].to_pylist())[present]
    duration = table["duration_s"].to_numpy()[present]
    found = deduplicate(emb[present], CFG.threshold, duration,
                        params=SearchParams.of(CFG))  # fmt: skip
    out = {c: (True, None) for c in table["clip_id"].to_pylist()}
    for k, clip in enumerate(ids):
        if not found.kept[k]:
            out[clip] = (False, str(ids[found.duplicate_of[k]]))
    assert 200 < sum(not kept for kept, _ in out.values()) < 2000  # duplicates, not everything
    return out


def test_in_process_stage_equals_the_in_process_search(emb, reference, tmp_path):
    run, step, units = write_run(tmp_path, emb)
    stats = run_global(run, step, units, SerialPool())
    assert len(stats) == len(units) and not run.storage.exists("dedup/.work/g00000")
    assert verdicts(run) == reference
    pairs = run.storage.read_table(f"dedup/{PAIRS}")
    assert pairs.num_rows >= sum(not k for k, _ in reference.values())
    assert min(pairs["similarity"].to_pylist()) >= CFG.threshold


@pytest.mark.ray
def test_ray_cluster_of_1_2_and_4_workers_and_a_killed_worker_end_the_same(
    emb, reference, tmp_path
):
    with local_cluster([{"num_cpus": 1}]) as cluster:
        for nodes in (1, 2, 4):
            while len(cluster.worker_nodes) < nodes:
                cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            run, step, units = write_run(tmp_path / f"w{nodes}", emb)
            runner = RayRunner(progress=False)
            runner.prepare([step])
            runner.run([step], run, units, Totals())
            assert verdicts(run) == reference, f"{nodes} worker node(s)"

        # A dedup task's worker killed as it runs: Ray runs the task again elsewhere.
        run, step, units = write_run(tmp_path / "killed", emb)
        killed: list[str] = []

        def kill_a_dedup_task() -> None:
            deadline = time.time() + 120
            while time.time() < deadline and not killed:
                for proc in psutil.process_iter(["cmdline"]):
                    title = " ".join(proc.info["cmdline"] or [])
                    if title.startswith(("ray::dedup_assign", "ray::dedup_pairs")):
                        os.kill(proc.pid, signal.SIGKILL)
                        killed.append(title)
                        return
                time.sleep(0.01)

        watcher = threading.Thread(target=kill_a_dedup_task, daemon=True)
        watcher.start()
        runner = RayRunner(progress=False)
        runner.prepare([step])
        runner.run([step], run, units, Totals())
        watcher.join()
        assert killed, "dedup finished before a task could be killed"
        assert verdicts(run) == reference
