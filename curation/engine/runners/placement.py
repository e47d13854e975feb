"""What each Ray operator of a run reserves, whether the cluster can ever give it, and which
stages can stream together.

Every step becomes one or more operators (`Op`): a plain stage one (tasks, or an actor pool
for a stage with models); a stage split into parts a CPU operator that makes its prompts and
one actor pool per group of its models (`Stage.model_groups`); a global stage one Ray task. GPUs are
resolved here: `resources.gpus: auto` becomes what the operator's models need where the
cluster has GPUs (a vLLM engine its tensor_parallel_size in any case) and 0 where it has none.

All of this is decided in the driver before any work: an operator that asks for more than
the largest node offers is an error naming the stage (Ray would otherwise wait forever for
a node that cannot exist), and consecutive stages are cut into segments where their actor
pools, each holding a worker from the start, would leave no node with room for the tasks
upstream (judged node by node: two half-free nodes do not make room for a 1-CPU task).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from curation.core.config import ConfigError, Resources, TaskResources
from curation.core.worker import GpuNeed
from curation.engine.shard_task import Step

EPS = 1e-9


@dataclass(frozen=True)
class Op:
    step: Step
    name: str  # how Ray's progress shows it
    part: str  # "run" | "prepare" | "answer" | "global" | "tasks" (a global stage's)
    actor: bool
    cpus: float
    gpus: float
    memory_gb: float | None
    concurrency: int
    calls: tuple[int, ...] = ()  # the models an "answer" worker holds
    last: bool = True  # this operator writes the shard

    def request(self) -> str:
        mem = f", {self.memory_gb:g} GB memory" if self.memory_gb else ""
        return f"{self.cpus:g} CPU, {self.gpus:g} GPU{mem} per worker"


def resolve_gpus(res: Resources, need: GpuNeed, cluster_gpus: float, what: str) -> float:
    if res.gpus != "auto":
        gpus = float(res.gpus)
        if need.required and gpus + EPS < need.gpus:
            raise ConfigError(
                f"{what}.resources.gpus is {gpus:g} but its model needs {need.gpus:g} GPU(s) "
                "(a vLLM engine's tensor_parallel_size, or a device set to cuda): use auto "
                "or at least that"
            )
        return gpus
    return need.gpus if (need.required or cluster_gpus > 0) else 0.0


def ops_of(step: Step, cluster_gpus: float) -> list[Op]:
    stage, res = step.stage, step.stage.resources
    name = stage.name

    def op(label: str, part: str, actor: bool, r: Resources | TaskResources, gpus: float,
           **kw: Any) -> Op:  # fmt: skip
        return Op(step, label, part, actor, r.cpus, gpus, r.memory_gb, r.concurrency, **kw)

    if stage.is_global:  # the coordinating task, then each task it hands out
        tasks = stage.task_resources
        return [
            op(name, "global", False, res, resolve_gpus(res, GpuNeed(), cluster_gpus, name)),
            op(f"{name}.tasks", "tasks", False, tasks,
               resolve_gpus(tasks, stage.gpu_need(), cluster_gpus, f"{name}.tasks")),
        ]  # fmt: skip
    groups = stage.model_groups()
    if not groups:
        gpus = resolve_gpus(res, stage.gpu_need(), cluster_gpus, name)
        return [op(name, "run", stage.uses_actor, res, gpus)]
    prepare = stage.prepare_resources
    ops = [op(f"{name}.prepare", "prepare", False, prepare,
              resolve_gpus(prepare, GpuNeed(), cluster_gpus, f"{name}.prepare"))]  # fmt: skip
    for k, group in enumerate(groups):
        label = f"{name}.{group.label}" if group.label else name
        ops.append(op(label, "answer", True, res, resolve_gpus(res, group.gpu_need, cluster_gpus, name),
                      calls=group.calls, last=k == len(groups) - 1))  # fmt: skip
    return ops


def _fits(op: Op, node: dict[str, float]) -> bool:
    memory = (op.memory_gb or 0.0) * 2**30
    return (
        op.cpus <= node.get("CPU", 0.0) + EPS
        and op.gpus <= node.get("GPU", 0.0) + EPS
        and memory <= node.get("memory", 0.0) + 1
    )


def describe(node: dict[str, float]) -> str:
    mem = node.get("memory", 0.0) / 2**30
    return f"{node.get('CPU', 0.0):g} CPU, {node.get('GPU', 0.0):g} GPU, {mem:.1f} GB memory"


def check_fit(ops: list[Op], nodes: list[dict[str, float]]) -> None:
    """Every operator's worker must fit on some node, as it is now."""
    if not nodes:
        raise ConfigError("the Ray cluster has no live node")
    largest = max(nodes, key=lambda n: (n.get("GPU", 0.0), n.get("CPU", 0.0), n.get("memory", 0)))
    for op in ops:
        if not any(_fits(op, n) for n in nodes):
            raise ConfigError(
                f"stage {op.step.stage.name}: {op.name} asks for {op.request()}, more than any "
                f"node of the cluster offers (the largest: {describe(largest)}); lower "
                f"{op.step.stage.name}.resources (or its prepare resources) or add a bigger node"
            )


def fits_together(ops: list[Op], nodes: list[dict[str, float]]) -> bool:
    """Whether these operators can stream at once: one actor of every pool placed (each on the
    node with the most room left, as Ray spreads them), every kind of task must still find a
    node with room for one task, or the work upstream of the actors never runs."""
    free = [{"CPU": n.get("CPU", 0.0), "GPU": n.get("GPU", 0.0)} for n in nodes]
    for op in sorted((o for o in ops if o.actor), key=lambda o: (-o.gpus, -o.cpus)):
        room = [f for f in free if op.cpus <= f["CPU"] + EPS and op.gpus <= f["GPU"] + EPS]
        if not room:
            return False
        best = max(room, key=lambda f: (f["GPU"] if op.gpus else -f["GPU"], f["CPU"]))
        best["CPU"] -= op.cpus
        best["GPU"] -= op.gpus
    return all(
        any(o.cpus <= f["CPU"] + EPS and o.gpus <= f["GPU"] + EPS for f in free)
        for o in ops
        if not o.actor
    )


def total(nodes: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(n.get(k, 0.0) for n in nodes) for k in ("CPU", "GPU", "memory")}


def segments(
    steps: list[Step], ops: dict[int, list[Op]], nodes: list[dict[str, float]], strict: bool = True
) -> list[list[Step]]:
    """Consecutive steps that stream together; a global stage is a segment of its own. A
    step whose own workers cannot be up at once is an error, unless not `strict` (nodes of
    an autoscaling cluster may still come): then it is a segment of its own."""
    out: list[list[Step]] = []
    current: list[Step] = []
    for i, step in enumerate(steps):
        if step.stage.is_global:
            out += [current, [step]] if current else [[step]]
            current = []
            continue
        if not fits_together(ops[i], nodes):
            if not strict:
                out += [current, [step]] if current else [[step]]
                current = []
                continue
            parts = " + ".join(f"{o.name} ({o.request()})" for o in ops[i])
            raise ConfigError(
                f"stage {step.stage.name}: its workers must run at once ({parts}) but the "
                f"cluster's nodes cannot hold them together ({describe(total(nodes))} in "
                "all); give them fewer GPUs or CPUs, or serve a model behind an "
                "OpenAI-compatible server (backend kind openai)"
            )
        together = [o for k in range(i - len(current), i) for o in ops[k]] + ops[i]
        if current and not fits_together(together, nodes):
            out.append(current)
            current = []
        current.append(step)
    if current:
        out.append(current)
    return out
