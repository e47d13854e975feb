"""What each operator reserves and what the planner decides, node by node, without Ray."""

from __future__ import annotations

import pytest

from curation.engine.config import ConfigError, load_config
from curation.engine.pipeline import build_stages
from curation.engine.runners.placement import check_fit, fits_together, ops_of, segments
from curation.engine.shard_task import plan_steps
from curation.rundir import RunDir

CLUSTER = "configs/curate/cluster.yaml"


def steps_of(tmp_path, path=None, *overrides):
    config = load_config(path, list(overrides))
    return plan_steps(build_stages(config, RunDir(tmp_path, "r")), "inputs", 64)


def node(cpus, gpus=0.0, memory_gb=64.0):
    return {"CPU": cpus, "GPU": gpus, "memory": memory_gb * 2**30}


def test_gpus_auto_reserve_what_the_models_need(tmp_path):
    steps = {s.stage.name: s for s in steps_of(tmp_path, CLUSTER)}
    brief = ops_of(steps["brief_caption"], cluster_gpus=16)
    assert [(o.name, o.actor, o.gpus) for o in brief] == [
        ("brief_caption.prepare", False, 0.0), ("brief_caption", True, 8.0),
    ]  # fmt: skip
    # Two vLLM models: a pool each, the last one writes the shard.
    detailed = ops_of(steps["detailed_caption"], cluster_gpus=16)
    assert [(o.name, o.gpus, o.last) for o in detailed[1:]] == [
        ("detailed_caption.qwen2-vl-72b", 8.0, False), ("detailed_caption.internvl2.5-78b", 8.0, True),
    ]  # fmt: skip
    assert ops_of(steps["boxes"], cluster_gpus=16)[0].gpus == 0.25  # as configured
    # The local profile's transformers models: a GPU each where there are GPUs, else none.
    local = {s.stage.name: s for s in steps_of(tmp_path, "configs/curate/local.yaml")}
    assert ops_of(local["brief_caption"], cluster_gpus=1)[1].gpus == 1.0
    assert ops_of(local["brief_caption"], cluster_gpus=0)[1].gpus == 0.0
    assert ops_of(local["scenes"], cluster_gpus=8)[0].gpus == 0.0


def test_fewer_gpus_than_an_engine_needs_is_named(tmp_path):
    steps = {s.stage.name: s for s in steps_of(tmp_path, CLUSTER, "brief_caption.resources.gpus=4")}
    with pytest.raises(ConfigError, match=r"brief_caption.resources.gpus is 4 but .* needs 8"):
        ops_of(steps["brief_caption"], cluster_gpus=16)


def test_a_cuda_device_is_reserved_and_checked(tmp_path):
    local = "configs/curate/local.yaml"
    steps = {
        s.stage.name: s for s in steps_of(tmp_path, local, "brief_caption.backend.device=cuda:1")
    }
    assert ops_of(steps["brief_caption"], cluster_gpus=0)[1].gpus == 2.0  # cuda:1 needs two
    steps = {s.stage.name: s for s in steps_of(tmp_path, local, "brief_caption.backend.device=cuda:1",
                                                "brief_caption.resources.gpus=1")}  # fmt: skip
    with pytest.raises(ConfigError, match="brief_caption.resources.gpus is 1 but"):
        ops_of(steps["brief_caption"], cluster_gpus=4)
    steps = {s.stage.name: s for s in steps_of(tmp_path, None, "embed.device=cuda")}
    assert ops_of(steps["embed"], cluster_gpus=1)[0].gpus == 1.0  # an embedder on a GPU
    steps = {s.stage.name: s for s in steps_of(tmp_path, None, "dedup.tasks.gpus=3")}
    coordinator, tasks = ops_of(steps["dedup"], cluster_gpus=4)
    assert (coordinator.gpus, tasks.gpus, tasks.name) == (0.0, 3.0, "dedup.tasks")
    with pytest.raises(ConfigError, match=r"stage dedup: dedup.tasks asks for 1 CPU, 3 GPU"):
        check_fit([tasks], [node(16, 2)])


def test_a_request_larger_than_every_node_fails(tmp_path):
    steps = {s.stage.name: s for s in steps_of(tmp_path, CLUSTER)}
    ops = ops_of(steps["brief_caption"], cluster_gpus=8)
    with pytest.raises(ConfigError, match=r"asks for 8 CPU, 8 GPU .*largest: 16 CPU, 4 GPU"):
        check_fit(ops, [node(16, 4), node(16, 4)])  # 8 GPUs in all, but 4 a node
    check_fit(ops, [node(16, 8)])


def test_streaming_is_judged_node_by_node(tmp_path):
    steps = {s.stage.name: s for s in steps_of(tmp_path, None, "boxes.resources.cpus=0.5")}
    ops = ops_of(steps["scenes"], 0) + ops_of(steps["boxes"], 0)  # a 1-CPU task, a 0.5 actor
    assert fits_together(ops, [node(1), node(1)])  # the actor on one node, tasks on the other
    assert not fits_together(ops, [node(0.75), node(0.75)])  # 1.5 CPUs, but no node for a task
    assert fits_together(ops, [node(2)])


def test_stages_that_cannot_stream_together_are_split_into_segments(tmp_path):
    steps = steps_of(tmp_path)
    ops = {i: ops_of(s, 0) for i, s in enumerate(steps)}
    big = segments(steps, ops, [node(16)])
    names = [[s.stage.name for s in seg] for seg in big]
    assert names[1] == ["dedup"] and len(big) == 3  # the global stage is a barrier
    small = segments(steps, ops, [node(1), node(1)])
    assert len(small) > len(big)  # model pools cannot all hold a worker at once on 2 CPUs
    flat = [s.stage.name for seg in small for s in seg]
    assert flat == [s.stage.name for s in steps]  # in order, each once
