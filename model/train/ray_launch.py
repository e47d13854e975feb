"""Multi-worker training on Ray Train's TorchTrainer: the same `train` loop in every worker.

Ray Train starts the workers, sets up the process group (gloo on CPU, NCCL on GPU) and places
them on the cluster (`RAY_ADDRESS`, or a local Ray); the loop wraps the model in DDP or FSDP.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from model.train.config import TrainConfig
from model.train.loop import TrainResult

RESULT_FILE = "last_result.json"


def _worker(config: dict[str, Any]) -> None:
    import ray.train

    from model.train.loop import train

    os.chdir(config["cwd"])  # relative paths in the stage YAML mean the same on every worker
    cfg = TrainConfig.model_validate(config["cfg"])
    result = train(cfg, resume=config["resume"], stop_at=config["stop_at"])
    if ray.train.get_context().get_world_rank() == 0:
        # The driver reads rank 0's result from a file: the checkpoints live on shared storage
        # anyway, and Ray Train keeps reported metrics only alongside Ray checkpoints.
        summary = {
            "losses": result.losses,
            "val_losses": result.val_losses,
            "first_step": result.first_step,
            "checkpoint": str(result.checkpoint) if result.checkpoint else None,
            "skipped": result.skipped,
            "tokens_per_s": result.tokens_per_s,
        }
        (cfg.output_path() / RESULT_FILE).write_text(json.dumps(summary))


def train_with_ray(
    cfg: TrainConfig, *, resume: bool = True, stop_at: int | None = None
) -> TrainResult:
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=True)
    d = cfg.distributed
    trainer = TorchTrainer(
        _worker,
        train_loop_config={
            "cfg": cfg.model_dump(mode="json"),
            "resume": resume,
            "stop_at": stop_at,
            "cwd": os.getcwd(),
        },
        scaling_config=ScalingConfig(
            num_workers=d.workers,
            use_gpu=d.use_gpu,
            resources_per_worker={"CPU": d.cpus_per_worker, **({"GPU": 1} if d.use_gpu else {})},
        ),
        torch_config=TorchConfig(backend="nccl" if d.use_gpu else "gloo"),
        run_config=RunConfig(
            name=cfg.name, storage_path=str((cfg.output_path() / "ray").resolve())
        ),
    )
    result_file = cfg.output_path() / RESULT_FILE
    result_file.unlink(missing_ok=True)
    trainer.fit()  # raises if a worker failed
    metrics = json.loads(result_file.read_text())
    checkpoint = metrics.get("checkpoint")
    return TrainResult(
        losses=list(metrics["losses"]),
        val_losses=[(int(step), float(loss)) for step, loss in metrics.get("val_losses", [])],
        first_step=int(metrics["first_step"]),
        checkpoint=Path(checkpoint) if checkpoint else None,
        skipped=dict(metrics["skipped"]),
        tokens_per_s=float(metrics["tokens_per_s"]),
    )
