"""Where a stage's worker runs and which devices it may use.

A runner hands every stage a `Worker` in `setup()`. Under Ray it holds the GPU ids Ray
reserved for this worker (Ray points CUDA_VISIBLE_DEVICES at exactly those, so they are
`cuda:0..n-1` here); a worker that reserved none runs its models on the CPU even on a GPU
node, since Ray no longer hides the node's GPUs from such workers and every model would
otherwise land on GPU 0. In-process (the local runner) the process may use what torch sees.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


class DeviceError(RuntimeError):
    """A model asks for a device its worker was not given."""


@dataclass(frozen=True)
class GpuNeed:
    """What a model wants of a GPU, per worker (`resources.gpus: auto` reserves it)."""

    gpus: float = 0.0  # reserved where the cluster has GPUs
    required: bool = False  # the model cannot run on a CPU at all (vLLM)

    @staticmethod
    def most(needs: list[GpuNeed]) -> GpuNeed:
        return GpuNeed(max((n.gpus for n in needs), default=0.0), any(n.required for n in needs))

    @staticmethod
    def for_device(device: str | None) -> GpuNeed:
        """A local model that runs on a CPU or a GPU: one GPU unless told to use the CPU;
        `cuda:k` needs k + 1 (a worker sees the GPUs it reserved as cuda:0, cuda:1, ...)."""
        if device == "cpu":
            return GpuNeed()
        if device and device.startswith("cuda"):
            return GpuNeed(float(int(device.partition(":")[2] or 0) + 1), required=True)
        return GpuNeed(1.0)


@dataclass(frozen=True)
class Worker:
    # GPU ids Ray reserved for this worker; None when not under Ray (every visible GPU is ours)
    gpu_ids: tuple[str, ...] | None = None
    node: str = ""  # host name, and the Ray node under Ray

    @classmethod
    def local(cls) -> Worker:
        return cls(None, socket.gethostname())

    @classmethod
    def from_ray(cls) -> Worker:
        """The worker context inside a Ray task or actor."""
        import ray

        ids = tuple(str(i) for i in ray.get_gpu_ids())
        node = ray.get_runtime_context().get_node_id()
        return cls(ids, f"{socket.gethostname()}/{node[:12]}")

    def device(self, requested: str | None = None, what: str = "model") -> str:
        """The torch device for a model: `requested` if set, else the GPU this worker has."""
        if requested:
            if requested.startswith("cuda") and self.gpu_ids is not None:
                index = int(requested.partition(":")[2] or 0)
                if index >= len(self.gpu_ids):
                    raise DeviceError(
                        f"{what}: device {requested!r} but this worker reserved "
                        f"{len(self.gpu_ids)} GPU(s), which it sees as cuda:0..; set the "
                        "stage's resources.gpus (or leave the device unset)"
                    )
            return requested
        if self.gpu_ids == ():
            return "cpu"
        import torch

        if torch.cuda.is_available():
            return "cuda"
        if self.gpu_ids:
            log.warning(
                "%s: Ray gave this worker GPU(s) %s but CUDA is not available here; using the CPU",
                what,
                ",".join(self.gpu_ids),
            )
        return "cpu"

    def describe(self) -> dict[str, Any]:
        """What a shard's statistics record about where it was made."""
        return {
            "node": self.node,
            "pid": os.getpid(),
            "gpu_ids": list(self.gpu_ids) if self.gpu_ids is not None else None,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }


def release_torch_memory() -> None:
    """Give freed model memory back: collect garbage, then empty CUDA's cache if CUDA is up."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")  # never import torch just to release nothing
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
