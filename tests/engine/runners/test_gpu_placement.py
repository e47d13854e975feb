"""GPUs placed right, on clusters whose nodes declare GPUs they do not have: every model
worker reserves one and sees exactly the device Ray gave it, CPU stages see none, and two
model stages share a GPU only when configured to (fractions), else take turns."""

from __future__ import annotations

import pytest
from helpers import offline_config
from ray_cluster import local_cluster

from curation.engine.pipeline import Pipeline
from curation.engine.runners.ray_data import RayRunner
from curation.rundir import RunDir

pytestmark = pytest.mark.ray

# No dedup between the two captioning stages, so they can stream together.
STAGES = "stages=[probe, scenes, temporal, cut, boxes, brief_caption, detailed_caption]"


def config(tiny_models, *overrides: str):
    cfg = offline_config(tiny_models, STAGES, "runner.kind=ray", "cut.mode=virtual",
                  "run.clips_per_shard=1", *overrides)  # fmt: skip
    for model in [cfg.brief_caption.backend, *(m.backend for m in cfg.detailed_caption.models)]:
        model.device = None  # auto: the GPU the worker was given
    return cfg


def placements(run: RunDir, folder: str) -> set[tuple[str, tuple[str, ...], str | None]]:
    """(node, GPU ids, CUDA_VISIBLE_DEVICES) of the workers that wrote a folder."""
    out = set()
    for unit in run.units(folder):
        w = run.unit_stats(folder, unit)["worker"]
        out.add((w["node"], tuple(w["gpu_ids"]), w["cuda_visible_devices"]))
    return out


def test_each_model_worker_gets_its_own_gpu_and_cpu_stages_none(tiny_models, ray_signers, tmp_path):
    nodes = [{"num_cpus": 2, "num_gpus": 1}, {"num_cpus": 2, "num_gpus": 1}]
    with local_cluster(nodes):
        run = RunDir(tmp_path, "g")
        runner = RayRunner(progress=False)
        pipeline = Pipeline(config(tiny_models), run, runner=runner)
        pipeline.execute(ray_signers)
        ops = {o.name: o for step in pipeline.steps for o in runner._ops[id(step)]}
        assert ops["brief_caption"].gpus == 1 and ops["detailed_caption"].gpus == 1  # auto
        assert ops["scenes"].gpus == 0 and ops["brief_caption.prepare"].gpus == 0
        assert len(runner.plan(pipeline.steps)) == 1  # both models stream at once...
        brief, detailed = placements(run, "captions"), placements(run, "detailed")
        for _node, ids, visible in brief | detailed:
            assert len(ids) == 1 and visible == ids[0]  # ...each on exactly its own device
        assert {(n, i) for n, i, _ in brief}.isdisjoint({(n, i) for n, i, _ in detailed})
        assert all(ids == () for _, ids, _ in placements(run, "temporal"))  # CPU work: no GPU


def test_two_stages_share_a_gpu_only_when_configured_to(tiny_models, ray_signers, tmp_path):
    with local_cluster([{"num_cpus": 4, "num_gpus": 1}]):
        whole = Pipeline(config(tiny_models), RunDir(tmp_path, "w"), runner=RayRunner())
        whole.runner.prepare(whole.steps)
        assert len(whole.runner.plan(whole.steps)) == 2  # one GPU: the models take turns

        halves = ["brief_caption.resources.gpus=0.5", "detailed_caption.resources.gpus=0.5"]
        run = RunDir(tmp_path, "h")
        runner = RayRunner(progress=False)
        pipeline = Pipeline(config(tiny_models, *halves), run, runner=runner)
        pipeline.execute(ray_signers)
        assert len(runner.plan(pipeline.steps)) == 1  # half a GPU each: they share it
        shared = placements(run, "captions") | placements(run, "detailed")
        assert len({(n, ids) for n, ids, _ in shared}) == 1
