"""Ray Train's TorchTrainer with two CPU workers (gloo) against one process."""

from __future__ import annotations

import pytest
from train_fixtures import tiny_stage, write_exports

from model.train.loop import train
from model.train.ray_launch import train_with_ray


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def one_process_losses(tiny_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("one")
    exports = write_exports(folder / "run")
    # Global batch 4: one process × 2 micro-batches of 2.
    cfg = tiny_stage(
        "stage3_joint",
        tiny_dir,
        folder,
        exports,
        "init_from=[]",
        "schedule.micro_batch_size=2",
        "schedule.grad_accum=2",
        *held_out(exports),
        steps=3,
    )
    result = train(cfg)
    return exports, result.losses, result.val_losses


def held_out(exports):
    """Five validation samples: two workers get three and two (one runs a blank batch)."""
    return [f"data.val=['{exports / 'mixed.json'}']", "data.val_max_samples=5", "eval_every=2"]


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_workers_match_one_process_for_the_same_global_batch(
    ray_local, one_process_losses, strategy, tiny_dir, tmp_path
):
    exports, expected, expected_val = one_process_losses
    # Global batch 4: two workers × 2 micro-batches of 1. Stage 3 mixes clips with and
    # without audio, so under FSDP the workers' batches differ in which branches they use.
    cfg = tiny_stage(
        "stage3_joint",
        tiny_dir,
        tmp_path,
        exports,
        "init_from=[]",
        "schedule.micro_batch_size=1",
        "schedule.grad_accum=2",
        "distributed.workers=2",
        f"distributed.strategy={strategy}",
        *held_out(exports),
        steps=3,
    )
    if strategy == "fsdp":  # also stop and resume: sharded optimizer state round-trips
        head = train_with_ray(cfg, stop_at=2)
        tail = train_with_ray(cfg)
        assert (head.first_step, tail.first_step) == (0, 2)
        losses, val = head.losses + tail.losses, head.val_losses + tail.val_losses
    else:
        result = train_with_ray(cfg)
        losses, val = result.losses, result.val_losses
    assert losses == pytest.approx(expected, rel=1e-4)
    # The validation loss at steps 2 and 3, summed over both workers' shares: as one process.
    assert [s for s, _ in val] == [s for s, _ in expected_val] == [2, 3]
    assert [v for _, v in val] == pytest.approx([v for _, v in expected_val], rel=1e-4)
    assert (cfg.output_path() / "final" / "model.safetensors").is_file()
