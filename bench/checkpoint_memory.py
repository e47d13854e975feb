"""Benchmark: a checkpoint's host memory on rank 0 is bounded by one weight shard, whatever the
world size: the optimizer state is written by every rank for itself (torch.distributed.checkpoint)
and the weights are gathered one tensor at a time into files of at most `max_shard_bytes`.
Runs of FSDP2 on 1, 2 and 4 gloo processes save the same 64 MiB model (four 16 MiB layers)
with its optimizer (128 MiB more) in 8 MiB files while rank 0's resident memory is sampled
(every 2 ms) and compared with a full gather (192 MiB):

    python bench/checkpoint_memory.py
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import psutil
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from model.train.checkpoint import OPTIMIZER, save_checkpoint
from model.weights import INDEX, read_tensors

MIB = 1 << 20
LAYERS, WIDTH = 4, 2048  # 4 × 16 MiB of fp32 weights


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    os.environ |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(WIDTH, WIDTH, bias=False) for _ in range(LAYERS)])
    mesh = init_device_mesh("cpu", (world,))
    for layer in model:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, WIDTH)).sum().backward()
    optimizer.step()
    process, peak, stop = psutil.Process(), [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.002)

    dist.barrier()
    base = process.memory_info().rss
    sampler = threading.Thread(target=sample)
    sampler.start()
    save_checkpoint(
        Path(out) / "step",
        model=model,
        engine=model,
        optimizer=optimizer,
        parts=["0", "1", "2", "3"],
        is_main=rank == 0,
        barrier=dist.barrier,
        scheduler_state={},
        trainer_state={"step": 1},
        omni_config={},
        train_config={},
        max_shard_bytes=8 * MIB,
    )
    stop.set()
    sampler.join()
    full = {n: p.full_tensor() for n, p in model.named_parameters()}
    if rank == 0:
        torch.save(full, Path(out) / "expected.pt")
        (Path(out) / "peak.json").write_text(json.dumps({"delta": peak[0] - base}))
    dist.barrier()  # nobody tears the group down while another still talks to it
    dist.destroy_process_group()


def _save(world: int, folder: Path) -> int:
    mp.spawn(_worker, args=(world, _port(), str(folder)), nprocs=world, join=True)
    return json.loads((folder / "peak.json").read_text())["delta"]


def main() -> None:
    import tempfile

    deltas = {}
    with tempfile.TemporaryDirectory() as tmp:
        for world in (1, 2, 4):
            folder = Path(tmp) / f"world{world}"
            folder.mkdir()
            deltas[world] = _save(world, folder)
            step = folder / "step"
            saved = dict(read_tensors(step))
            expected = torch.load(folder / "expected.pt")
            assert saved.keys() == expected.keys()
            assert all(torch.equal(saved[k], expected[k]) for k in expected), "weights differ"
            assert (step / INDEX).is_file() and (step / OPTIMIZER).is_dir()
    layer = WIDTH * WIDTH * 4
    full = LAYERS * layer * 3  # the weights and AdamW's two moments, gathered whole
    print(
        f"{'processes':>9} {'rank-0 growth MiB':>18}   baseline: a full gather, {full / MIB:.0f} MiB"
    )
    for world, delta in deltas.items():
        print(f"{world:>9} {delta / MIB:>18.1f}")
    worst = max(deltas.values())
    print(
        f"RESULT bench=checkpoint_memory layer_bytes={layer} full_gather_bytes={full} "
        + " ".join(f"world{w}_rank0_growth_bytes={d}" for w, d in deltas.items())
        + f" max_over_layer={worst / layer:.2f}"
    )


if __name__ == "__main__":
    main()
