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
    """DDP over the built, placed model (CPU with gloo, GPU with NCCL); FSDP models are
    sharded while they are built (`shard`), so they come back as they are."""
    if not dist.distributed or strategy == "fsdp":
        return model
    # Some trainable parts sit out some batches (no audio, no video): let DDP know.
    ids = [dist.device.index] if dist.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def shard(model: nn.Module, dist: Dist, bf16: bool) -> nn.Module:
    """FSDP2 (`fully_shard`): every repeated block, then every part, then the whole model is
    one unit; parameters, gradients and optimizer state are split across the workers. The LLM
    is not one unit: the omni model calls its embedding, its decoder and its head apart (a
    unit's weights are gathered only around its own forward), so those are the units. With
    `bf16` the units compute in bfloat16 and reduce gradients in float32 (the parameters and
    the optimizer stay float32). Works on meta parameters (nothing allocated yet)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    from model.config import PARTS

    mesh = init_device_mesh(dist.device.type, (dist.world_size,))
    policy = (
        MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if bf16
        else MixedPrecisionPolicy()
    )
    layers = _layer_classes(model)
    units = [m for m in model.modules() if type(m) in layers]
    llm = model.llm
    units += [llm.get_input_embeddings(), llm.get_output_embeddings(), llm.model]
    units += [getattr(model, p) for p in PARTS if p != "llm" and getattr(model, p, None)]
    for module in units:
        if any(True for _ in module.parameters()):
            fully_shard(module, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    return model


def materialize(model: nn.Module, dist: Dist, full_state: dict[str, torch.Tensor]) -> None:
    """A sharded model built on the meta device gets its weights: rank 0 passes the full
    state (of a model it built on its CPU), and each tensor is broadcast in turn while every
    rank keeps only its shard. Buffers (rotary frequencies, position ids) were built for real
    on every rank and are kept."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    model.to_empty(device=dist.device)
    for name, value in buffers.items():
        owner, _, leaf = name.rpartition(".")
        model.get_submodule(owner)._buffers[leaf] = value.to(dist.device)
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    set_model_state_dict(model, full_state if dist.is_main else {}, options=options)


def _layer_classes(model: nn.Module) -> set[type[nn.Module]]:
    """Every repeated block (decoder/encoder layers, RegNet blocks) becomes one FSDP unit."""
    names = ("DecoderLayer", "EncoderLayer", "BertLayer", "Bottleneck")
    return {type(m) for m in model.modules() if type(m).__name__.endswith(names)}
