"""The Ray Data runner on a real multi-node cluster started here (a head with no CPUs and two
1-CPU worker nodes): the offline profile writes what the in-process runner writes, even with a
model worker killed mid-stage, a model behind a real HTTP server streams with the
stages around it through errors and hangs, and a request no node can meet fails before any
work."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pytest
from chat_server import ChatServer
from helpers import full_disk, offline_config
from ray_cluster import local_cluster

from curation.core import faults
from curation.core.units import Unit
from curation.engine.config import ConfigError
from curation.engine.pipeline import Pipeline
from curation.engine.runners.local import LocalRunner
from curation.engine.runners.ray_data import RayRunner
from curation.engine.shard_task import Step
from curation.engine.totals import Totals
from curation.rundir import RunDir
from stages.base import Stage
from stages.temporal_filter import TemporalConfig

pytestmark = pytest.mark.ray

FOLDERS = ["sources", "scenes", "temporal", "clips", "boxes", "captions", "embeddings", "dedup",
           "detailed", "consensus", "structured"]  # fmt: skip


@pytest.fixture(scope="module")
def cluster():
    with local_cluster([{"num_cpus": 1}, {"num_cpus": 1}], by_value=(__name__,)) as c:
        yield c


def manifests(run: RunDir, folders=FOLDERS) -> dict[str, list[dict]]:
    """Every folder's rows. Caption vectors are compared to float16 precision: a model
    worker with one CPU thread can round a last bit differently from one with two."""
    out = {}
    for folder in folders:
        rows = [
            {k: _comparable(v, run) for k, v in r.items()}
            for r in run.read_folder(folder).to_pylist()
        ]
        out[folder] = sorted(rows, key=lambda r: r.get("clip_id") or r["source_id"])
    return out


def _comparable(value, run: RunDir):
    if isinstance(value, str):
        return value.replace(run.location, "<run>")
    if isinstance(value, list) and value and isinstance(value[0], float):
        return len(value)  # a vector: its values are compared by same_vectors()
    return value


def same_vectors(run: RunDir, reference: RunDir) -> bool:
    def read(r: RunDir) -> dict[str, np.ndarray]:
        rows = r.read_folder("embeddings").to_pylist()
        return {x["clip_id"]: np.array(x["caption_embedding"] or []) for x in rows}

    mine, theirs = read(run), read(reference)
    return mine.keys() == theirs.keys() and all(
        np.allclose(mine[k], theirs[k], atol=2e-3) for k in mine
    )


def nodes_of(run: RunDir, folder: str) -> set[str]:
    return {run.unit_stats(folder, u)["worker"]["node"] for u in run.units(folder)}


@pytest.fixture(scope="module")
def local_run(tiny_models, ray_sources, tmp_path_factory) -> RunDir:
    config = offline_config(tiny_models, "run.clips_per_shard=2")
    run = RunDir(tmp_path_factory.mktemp("local"), "r")
    Pipeline(config, run, runner=LocalRunner(progress=False)).execute(ray_sources)
    return run


@pytest.fixture(scope="module")
def local_reference(local_run) -> dict:
    return manifests(local_run)


def test_offline_profile_on_a_multinode_cluster_with_a_worker_killed_writes_what_local_writes(
    cluster, tiny_models, ray_sources, local_reference, local_run, tmp_path
):
    """The whole offline profile on two nodes, one clip a shard (the local reference has two:
    sharding changes no row), and the first brief-caption model worker killed mid-stage."""
    config = offline_config(tiny_models, "run.clips_per_shard=1", "runner.kind=ray")
    run = RunDir(tmp_path, "r")
    killed: list[int] = []

    def kill_the_first_caption_worker() -> None:
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            done = run.units("captions") if run.storage.exists("captions") else set()
            if done:
                pid = run.unit_stats("captions", min(done))["worker"]["pid"]
                os.kill(pid, signal.SIGKILL)  # a crash: Ray restarts the actor, resends its shard
                killed.append(pid)
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_the_first_caption_worker, daemon=True)
    watcher.start()
    state = Pipeline(config, run).execute(ray_sources)
    watcher.join()
    assert all(s["status"] == "done" for s in state["stages"].values())
    assert killed, "brief_caption finished before a worker could be killed"
    later = {run.unit_stats("captions", u)["worker"]["pid"] for u in run.units("captions")}
    assert later - set(killed), "no restarted worker wrote a shard"
    assert manifests(run) == local_reference and same_vectors(run, local_run)
    # The nature footage's scenes were re-cut into pieces of one clip, and work spread out.
    assert any(u.piece and u.piece >= 2 for u in run.units("temporal"))
    assert len(set().union(*(nodes_of(run, f) for f in FOLDERS))) == 2  # both worker nodes
    assert state["stages"]["temporal"]["shards"] > state["stages"]["scenes"]["shards"]


def test_a_served_model_streams_with_the_stages_around_it_through_errors_and_hangs(
    cluster, tiny_models, ray_sources, tmp_path
):
    with ChatServer(tiny_models["qwen2-vl"]) as server:
        server.delay_s = 0.3
        server.schedule = {0: "error", 1: "hang"}  # a 500 and a request that never answers
        server.hang_s = 10.0
        config = offline_config(
            tiny_models, "run.clips_per_shard=1", "runner.kind=ray", "cut.mode=virtual",
            "brief_caption.backend.kind=openai", f"brief_caption.backend.base_url={server.url}",
            "brief_caption.backend.model=tiny", "brief_caption.backend.retries=0",
            "brief_caption.backend.timeout_s=2", "brief_caption.attempts=1",
            # An HTTP client waits, it does not compute: small reservations let the boxes, the signals, the events,
            # the prompts and the captions run at once on two 1-CPU nodes.
            "scenes.resources.cpus=0.5", "cut.resources.cpus=0.5",
            "boxes.resources.cpus=0.4", "signals.resources.cpus=0.2", "events.resources.cpus=0.2",
            "brief_caption.prepare.cpus=0.2",
            "brief_caption.resources.cpus=0.2", "brief_caption.backend.concurrency=1",
        )  # fmt: skip
        run = RunDir(tmp_path, "s")
        runner = RayRunner(progress=False)
        pipeline = Pipeline(config, run, runner=runner)
        pipeline.execute(ray_sources, until="brief_caption")
        steps = pipeline.steps[: [s.stage.name for s in pipeline.steps].index("brief_caption") + 1]
        assert len(runner.plan(steps)) == 1  # one segment: nothing waits for the model stage
        boxes_written = [(run.path / "boxes").joinpath(f).stat().st_mtime
                         for f in run.storage.files("boxes")]  # fmt: skip
        assert len(boxes_written) >= 3 and server.times[0] < max(boxes_written)
        rows = run.read_folder("captions").to_pylist()
        failed = {r["clip_id"]: r["reject_detail"] for r in rows if not r["kept"]}
        assert any("HTTP 500" in d for d in failed.values())
        assert any("timed out" in d for d in failed.values())
        assert len(failed) == 2 == len(rows)  # the two signers; the run did not wait on the hang
        # The server recovers: a re-run asks again for exactly the failed clips.
        server.schedule, asked = {}, len(server.requests)
        Pipeline(config, run, runner=runner).execute(ray_sources, until="brief_caption")
        assert len(server.requests) - asked == 2
        assert all(r["kept"] for r in run.read_folder("captions").to_pylist())


def test_a_full_disk_in_a_worker_stops_the_run_with_its_line_and_resumes(
    cluster, tiny_models, ray_sources, local_reference, tmp_path
):
    """A fault of the machine in a Ray worker: the driver gets the worker's fault (the same
    line the local runner gives) and a resume finishes the stage as if nothing happened."""
    config = offline_config(tiny_models, "run.clips_per_shard=2", "runner.kind=ray")
    run = RunDir(tmp_path, "full")
    with full_disk(run.path / "scenes"), pytest.raises(Exception) as caught:
        Pipeline(config, run).execute(ray_sources, until="scenes")
    fault = faults.find_fault(caught.value)
    assert fault is not None, caught.value
    assert fault.line().startswith("no space left on device") and "(stage scenes, shard " in (
        fault.line()
    )
    Pipeline(config, run).execute(ray_sources, until="scenes")
    assert manifests(run, ["sources", "scenes"]) == {
        f: local_reference[f] for f in ("sources", "scenes")
    }


def test_a_stage_larger_than_every_node_fails_before_any_work(cluster, tiny_models, ray_sources,
                                                              tmp_path):  # fmt: skip
    config = offline_config(tiny_models, "runner.kind=ray", "dedup.resources.cpus=2")
    run = RunDir(tmp_path, "big")
    with pytest.raises(ConfigError, match=r"stage dedup: dedup asks for 2 CPU.*largest: 1 CPU"):
        Pipeline(config, run).execute(ray_sources)
    assert not run.storage.exists("run.json") and not run.storage.exists("inputs")


@dataclass(kw_only=True)
class DieOnceStage(Stage):
    """Kills its own worker process the first time it runs, then behaves."""

    name: ClassVar[str] = "die_once"
    output_folder: ClassVar[str] = "out"
    schema: ClassVar[pa.Schema] = pa.schema(
        [pa.field("x", pa.int64()), pa.field("kept", pa.bool_(), nullable=False),
         pa.field("reject_reason", pa.string()), pa.field("reject_detail", pa.string())]
    )  # fmt: skip
    reads: ClassVar[tuple[str, ...]] = ("x",)
    cfg: TemporalConfig  # any section with resources
    marker: str

    def process(self, batch: pa.Table) -> pa.Table:
        if not Path(self.marker).exists():
            Path(self.marker).touch()
            os._exit(1)  # a crash, not an exception: only a retry can recover
        n = batch.num_rows
        return pa.table({"x": batch["x"], "kept": [True] * n, "reject_reason": [None] * n,
                         "reject_detail": [None] * n}, schema=self.schema)  # fmt: skip


@pytest.mark.parametrize("actor", [False, True])
def test_a_dead_worker_is_retried(cluster, tmp_path, actor):
    run = RunDir(tmp_path, "crash")
    run.write_unit("in", Unit(0), pa.table({"x": [1, 2, 3]}), {})
    cls = (
        type("DieOnceActorStage", (DieOnceStage,), {"uses_actor": True}) if actor else DieOnceStage
    )
    stage = cls(cfg=TemporalConfig(), marker=str(tmp_path / "died"))
    totals = Totals()
    RayRunner(progress=False).run([Step(stage, "in")], run, [Unit(0)], totals)
    assert (tmp_path / "died").exists()
    assert run.read_folder("out")["x"].to_pylist() == [1, 2, 3]
    assert totals.get("die_once").rows_out == 3
