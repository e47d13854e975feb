"""The process's place in a (possibly) distributed run, and the reductions the loop needs.

One CPU process for tests and small runs; under Ray Train's TorchTrainer the process group is
already set up (gloo on CPU, NCCL on GPU) and each worker runs the same loop.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch import nn


@dataclass(frozen=True)
class Dist:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def all_sum(self, values: list[float]) -> list[float]:
        if not self.distributed:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch_dist.all_reduce(t)
        return t.tolist()

    def count_all(self, items: list[str]) -> dict[str, int]:
        """How often each item occurs on all workers together."""
        if not self.distributed:
            return dict(Counter(items))
        gathered: list[list[str] | None] = [None] * self.world_size
        torch_dist.all_gather_object(gathered, items)
        return dict(Counter(x for part in gathered for x in part or []))

    def barrier(self) -> None:
        if self.distributed:
            torch_dist.barrier()


def current(use_gpu: bool) -> Dist:
    if use_gpu and not torch.cuda.is_available():
        raise RuntimeError("distributed.use_gpu is true but no CUDA device is visible")
    if torch_dist.is_available() and torch_dist.is_initialized():
        rank, world = torch_dist.get_rank(), torch_dist.get_world_size()
    else:
        rank, world = 0, 1
    if use_gpu:
        local = torch.cuda.current_device() if world > 1 else 0
        return Dist(rank, world, torch.device("cuda", local))
    return Dist(rank, world, torch.device("cpu"))


def wrap(model: nn.Module, dist: Dist, strategy: str) -> nn.Module:
    """DDP or FSDP (CPU with gloo, GPU with NCCL) over the built, placed model."""
    if not dist.distributed:
        return model
    if strategy == "ddp":
        # Some trainable parts sit out some batches (no audio, no video): let DDP know.
        ids = [dist.device.index] if dist.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=True
        )
    from torch.distributed.fsdp import FullyShardedDataParallel, ShardingStrategy
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    return FullyShardedDataParallel(
        model,
        auto_wrap_policy=ModuleWrapPolicy(_layer_classes(model)),
        sharding_strategy=ShardingStrategy.FULL_SHARD,
        device_id=dist.device,
        # Frozen and trainable parameters share FSDP units (towers next to projectors).
        use_orig_params=True,
        sync_module_states=False,
    )


def _layer_classes(model: nn.Module) -> set[type[nn.Module]]:
    """Every repeated block (decoder/encoder layers, RegNet blocks) becomes one FSDP unit."""
    names = ("DecoderLayer", "EncoderLayer", "BertLayer", "Bottleneck")
    return {type(m) for m in model.modules() if type(m).__name__.endswith(names)}
