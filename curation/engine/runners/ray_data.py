"""The Ray Data runner: shards stream through one operator per stage (or per model).

The driver plans and Ray's workers move the data. Shard keys form a Ray Dataset (one block
each); every stage is a `map_batches` operator that runs the stage on a shard, writes its
output to the run's storage and passes the key on, so stage 2 works on shard 0 while stage 1
is on shard 1. After the scene split each source shard's key becomes the keys of its pieces,
each its own block again, so the clips of a long source spread over the workers. Cheap stages
run as Ray tasks; stages with models run in actor pools that load them once per actor; a
model stage's prompts are made by CPU tasks before its model workers (curation/engine/runners/
placement.py says what each reserves). What comes back to the driver is each shard's
statistics, summed as they arrive. A worker that dies is handled by Ray itself: tasks are
retried and actors restarted with their shard sent again; Ray shows its progress bars.

Global stages (dedup) need every shard: between two streaming segments, one Ray task
coordinates them and hands their work out as Ray tasks (curation/engine/runners/ray_pool.py). The
run's storage must be reachable from every node: a shared folder, or an object store
(curation/storage.py).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from curation.core.units import Unit
from curation.engine.runners.placement import Op, check_fit, ops_of, segments
from curation.engine.runners.ray_ops import actor_class, global_task, task_fn
from curation.engine.shard_task import Step
from curation.engine.totals import Totals
from curation.rundir import RunDir

log = logging.getLogger(__name__)
# Environment variables that set how chatty native libraries are (glog, TensorFlow Lite).
QUIET_ENV_KEYS = ("GLOG_minloglevel", "TF_CPP_MIN_LOG_LEVEL", "GRPC_VERBOSITY")
T = TypeVar("T")


@dataclass
class RayRunner:
    address: str | None = None
    progress: bool = True
    fit_check: bool = True
    _ops: dict[int, list[Op]] = field(default_factory=dict, init=False, repr=False)
    _plan: list[list[Step]] = field(default_factory=list, init=False, repr=False)

    def _init(self) -> None:
        import ray

        if ray.is_initialized():
            return
        # address None: RAY_ADDRESS from the environment if set, else a new local instance.
        # The workers log as quietly as the driver was asked to (curation/cli/quiet.py).
        quiet = {k: os.environ[k] for k in QUIET_ENV_KEYS if k in os.environ}
        ray.init(address=self.address, include_dashboard=False, log_to_driver=True,
                 runtime_env={"env_vars": quiet} if quiet else None)  # fmt: skip
        log.info("ray: %s", ray.cluster_resources())

    @staticmethod
    def _nodes() -> list[dict[str, float]]:
        import ray

        return [n["Resources"] for n in ray.nodes() if n.get("Alive")]

    def prepare(self, steps: list[Step]) -> None:
        """Connect, decide every operator's resources and check the cluster can hold them."""
        import ray

        self._init()
        cluster_gpus = float(ray.cluster_resources().get("GPU", 0.0))
        self._ops = {id(step): ops_of(step, cluster_gpus) for step in steps}
        if self.fit_check:
            check_fit([o for ops in self._ops.values() for o in ops], self._nodes())
        self._plan = self.plan(steps)  # a step that can never stream fails here, not later
        for ops in self._ops.values():
            for op in ops:
                log.info("%s: %s (up to %d)", op.name, op.request(), op.concurrency)

    def plan(self, steps: list[Step]) -> list[list[Step]]:
        """The segments the steps run in (prepare() first)."""
        ops = {i: self._ops[id(s)] for i, s in enumerate(steps)}
        return segments(steps, ops, self._nodes(), strict=self.fit_check)

    def run(self, steps: list[Step], run: RunDir, units: list[Unit], totals: Totals) -> None:
        if [id(s) for seg in self._plan for s in seg] != [id(s) for s in steps]:
            self.prepare(steps)
        for segment in self._plan:
            if segment[0].stage.is_global:
                self._run_global(segment[0], run, units, totals)
            else:
                units = self._stream(segment, run, units, totals)

    def submit(self, fn: Callable[..., T], *args: Any) -> T:
        import ray

        self._init()
        task = ray.remote(fn).options(num_cpus=1, name=getattr(fn, "__name__", "task"))
        return ray.get(task.remote(*args))

    def _run_global(self, step: Step, run: RunDir, units: list[Unit], totals: Totals) -> None:
        import ray

        op, tasks = self._ops[id(step)]
        options: dict[str, Any] = {"num_cpus": op.cpus, "num_gpus": op.gpus, "name": op.name}
        if op.memory_gb:
            options["memory"] = op.memory_gb * 2**30
        task = ray.remote(global_task).options(**options)
        for stats in ray.get(task.remote(op, tasks, run, [u.key for u in units])):
            totals.add(stats)

    def _stream(
        self, steps: list[Step], run: RunDir, units: list[Unit], totals: Totals
    ) -> list[Unit]:
        import ray
        import ray.data

        if not units:
            return []
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = self.progress
        # Every shard its own block (the operators yield shard by shard), so shards spread
        # over the workers, the pieces of a long source included.
        block_size, ctx.target_max_block_size = ctx.target_max_block_size, 1
        try:
            ds = ray.data.from_items(
                [{"unit": u.key, "stats": "[]"} for u in units], override_num_blocks=len(units)
            )
            for step in steps:
                for op in self._ops[id(step)]:
                    ds = self._operator(ds, op, run)
            return self._collect(ds, totals, len(steps))
        finally:
            ctx.target_max_block_size = block_size

    @staticmethod
    def _collect(ds: Any, totals: Totals, n_steps: int) -> list[Unit]:
        """Drain the stream: sum each shard's statistics, keep the keys for what follows."""
        following: list[Unit] = []
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            for key, stats in zip(batch["unit"].to_pylist(), batch["stats"].to_pylist(),
                                  strict=True):  # fmt: skip
                for s in json.loads(stats):
                    totals.add(s)
                if key:
                    following.append(Unit.parse(key))
        log.info("ray: %d shard(s) through %d stage(s)", len(following), n_steps)
        return sorted(following)

    @staticmethod
    def _operator(ds: Any, op: Op, run: RunDir) -> Any:
        import ray.data

        common: dict[str, Any] = {"batch_size": 1, "batch_format": "pyarrow", "num_cpus": op.cpus}
        if op.gpus:
            common["num_gpus"] = op.gpus
        if op.memory_gb:
            common["memory"] = op.memory_gb * 2**30
        if op.actor:
            return ds.map_batches(
                actor_class(op),
                fn_constructor_kwargs={"op": op, "run": run},
                compute=ray.data.ActorPoolStrategy(min_size=1, max_size=op.concurrency),
                **common,
            )
        return ds.map_batches(
            task_fn(op, run), compute=ray.data.TaskPoolStrategy(size=op.concurrency), **common
        )
