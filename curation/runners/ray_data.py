"""The Ray Data runner: shards stream through one operator per stage.

Shard ids form a Ray Dataset (one block each); every stage is a `map_batches` operator that
runs the stage on a shard and passes the id on, so stage 2 works on shard 0 while stage 1 is
on shard 1. Cheap stages run as Ray tasks; stages with models (`uses_actor`) run in an actor
pool that calls `setup()` once per actor. Resources and concurrency come from each stage's
config. A worker that dies is handled by Ray itself: tasks are retried (Ray's default, 3
times) and actors restarted with their shard re-sent; Ray shows its own progress bars. On a multi-node cluster the run directory must be on a
filesystem every node sees.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from curation.rundir import RunDir
from curation.runners.llm_stage import run_llm_stage
from curation.shard_task import run_global, run_shard
from stages.base import Stage

log = logging.getLogger(__name__)


class _ShardActor:
    def __init__(self, stage: Stage, run: RunDir, input_folder: str):
        self.stage, self.run, self.input_folder = stage, run, input_folder
        stage.setup()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        for shard in batch["shard"]:
            run_shard(self.stage, self.run, self.input_folder, int(shard))
        return {"shard": batch["shard"]}


def _shard_task(stage: Stage, run: RunDir, input_folder: str):
    """A plain function for Ray tasks, named after the stage (Ray names operators by it)."""

    def task(batch: dict[str, Any]) -> dict[str, Any]:
        stage.setup()
        for shard in batch["shard"]:
            run_shard(stage, run, input_folder, int(shard))
        return {"shard": batch["shard"]}

    task.__name__ = task.__qualname__ = stage.name
    return task


def _fits(cluster: dict[str, float], stages: list[Stage]) -> bool:
    """Whether stages can stream together: each actor pool holds at least one actor from the
    start, so the actors' CPUs/GPUs plus the largest task's must fit the cluster, or the
    tasks upstream of the actors never get scheduled. A segment that does not fit is cut
    into consecutive segments (each a barrier), which only costs overlap."""
    for key, need in (("CPU", lambda r: r.cpus), ("GPU", lambda r: r.gpus)):
        held = sum(need(s.resources) for s in stages if s.uses_actor)
        task = max((need(s.resources) for s in stages if not s.uses_actor), default=0.0)
        if held + task > cluster.get(key, 0.0) + 1e-9 and len(stages) > 1:
            return False
    return True


@dataclass
class RayRunner:
    address: str | None = None
    progress: bool = True

    def _init(self) -> None:
        import ray

        if ray.is_initialized():
            return
        # address None: RAY_ADDRESS from the environment if set, else a new local instance.
        ray.init(address=self.address, include_dashboard=False, log_to_driver=True)
        log.info("ray: %s", ray.cluster_resources())

    def run(self, steps: list[tuple[Stage, str]], run: RunDir, shards: list[int]) -> None:
        """Stream shards through consecutive per-shard stages; global stages are barriers."""
        import ray

        self._init()
        cluster = ray.cluster_resources()
        segment: list[tuple[Stage, str]] = []
        for stage, input_folder in steps:
            in_llm_processor = getattr(stage, "runs_in_ray_llm", False)
            if not (stage.is_global or in_llm_processor):
                if not _fits(cluster, [s for s, _ in segment] + [stage]):
                    self._stream(segment, run, shards)
                    segment = []
                segment.append((stage, input_folder))
                continue
            self._stream(segment, run, shards)
            segment = []
            if in_llm_processor:
                run_llm_stage(stage, run, input_folder, shards)
            else:
                self._run_global(stage, run, input_folder, shards)
        self._stream(segment, run, shards)

    def _run_global(self, stage: Stage, run: RunDir, input_folder: str, shards: list[int]) -> None:
        import ray

        res = stage.resources
        options: dict[str, Any] = {"num_cpus": res.cpus, "num_gpus": res.gpus}
        if res.memory_gb:
            options["memory"] = res.memory_gb * 2**30
        task = ray.remote(run_global).options(name=stage.name, **options)
        ray.get(task.remote(stage, run, input_folder, shards))

    def _stream(self, steps: list[tuple[Stage, str]], run: RunDir, shards: list[int]) -> None:
        import ray
        import ray.data

        if not steps:
            return
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = self.progress
        ds = ray.data.from_items(
            [{"shard": s} for s in shards], override_num_blocks=max(1, len(shards))
        )
        for stage, input_folder in steps:
            res = stage.resources
            workers = max(1, min(res.concurrency, len(shards)))  # more than shards is idle
            common: dict[str, Any] = {
                "batch_size": 1,
                "num_cpus": res.cpus,
                "num_gpus": res.gpus or None,
                "memory": res.memory_gb * 2**30 if res.memory_gb else None,
            }
            common = {k: v for k, v in common.items() if v is not None}
            # Ray names each operator after its function or class: name them after the stage.
            if stage.uses_actor:
                ds = ds.map_batches(
                    type(stage.name, (_ShardActor,), {}),
                    fn_constructor_kwargs={
                        "stage": stage,
                        "run": run,
                        "input_folder": input_folder,
                    },
                    compute=ray.data.ActorPoolStrategy(min_size=1, max_size=workers),
                    **common,
                )
            else:
                ds = ds.map_batches(
                    _shard_task(stage, run, input_folder),
                    compute=ray.data.TaskPoolStrategy(size=workers),
                    **common,
                )
        done = ds.take_all()
        log.info("ray: %d shard(s) through %d stage(s)", len(done), len(steps))
