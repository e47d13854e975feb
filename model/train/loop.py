"""The training recipe: every stage runs this loop; the stage's YAML decides what it does.

Losses are summed over the supervised tokens of the whole global batch (all micro-batches of
all workers) and divided by that batch's token count, so one process and N workers compute the
same loss and the same update for the same global batch.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from model.omni import HumanOmniModel
from model.splice import IGNORE_INDEX
from model.train import checkpoint as ckpt
from model.train.config import TrainConfig
from model.train.data import build_loader
from model.train.dist import Dist, current, wrap
from model.train.fingerprint import check_resumable, fingerprint
from model.train.metrics import MetricsLogger, gate_stats
from model.train.optim import build_optimizer, build_scheduler
from model.train.prepare import omni_config_for, prepare_model, prepare_sharded, saved_parts
from model.train.validate import MODEL_KEYS, Validator, blank_batch, to_device

__all__ = ["TrainResult", "omni_config_for", "prepare_model", "train"]


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)  # one per step run by this call
    val_losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) by this call
    first_step: int = 0
    checkpoint: Path | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    tokens_per_s: float = 0.0
    model: HumanOmniModel | None = None  # the trained model (unwrapped), for callers in-process


def _bf16(cfg: TrainConfig, dist: Dist) -> bool:
    return cfg.precision == "bf16" or (cfg.precision == "auto" and dist.device.type == "cuda")


def _precision(cfg: TrainConfig, dist: Dist) -> contextlib.AbstractContextManager:
    if not _bf16(cfg, dist):
        return contextlib.nullcontext()
    return torch.autocast(device_type=dist.device.type, dtype=torch.bfloat16)


def train(cfg: TrainConfig, *, resume: bool = True, stop_at: int | None = None) -> TrainResult:
    """Run (or resume) one stage. `stop_at`: stop after that step with a checkpoint, as a
    pre-empted job would; a later call resumes there. Resuming needs checkpoints of the same
    config and data (`fingerprint`); others raise CheckpointMismatch."""
    dist = current(cfg.distributed.use_gpu)
    out_dir = cfg.output_path()
    omni = omni_config_for(cfg)
    resume_from = ckpt.latest_checkpoint(out_dir) if resume else None
    trained_on = fingerprint(cfg)  # the data files' hashes: computed once
    if resume_from is not None:
        check_resumable(ckpt.read_trainer_state(resume_from), cfg, resume_from, trained_on)
    start = ckpt.read_trainer_state(resume_from)["step"] if resume_from else 0
    loader, processor, steps = build_loader(cfg, omni, dist=dist, start_step=start)
    every_branch = cfg.distributed.strategy == "fsdp" and dist.distributed
    if every_branch:
        model = prepare_sharded(cfg, omni, processor, resume_from, dist, _bf16(cfg, dist))
    else:
        model = prepare_model(cfg, omni, processor, resume_from).to(dist.device)
    model.only_branch = cfg.model.branch
    if cfg.gradient_checkpointing:
        model.llm.gradient_checkpointing_enable({"use_reentrant": False})
    model.train()
    # Frozen towers run as at inference (BERT has dropout). A frozen LLM stays in training
    # mode: transformers checkpoints only in training mode, and Qwen2.5 has no dropout.
    for part in ("vision", "audio_encoder", "bert"):
        if part not in cfg.trainable:
            getattr(model, part).eval()
    engine = wrap(model, dist, cfg.distributed.strategy)
    optimizer = build_optimizer(engine, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, steps)
    state = {
        "step": 0,
        "total_steps": steps,
        "skipped": {},
        "samples": 0,
        "fingerprint": trained_on,
    }
    if resume_from is not None:
        ckpt.load_optimizer(engine, optimizer, resume_from)  # each rank reads its shard
        scheduler.load_state_dict(torch.load(resume_from / "scheduler.pt", weights_only=False))
        ckpt.set_rng_state(torch.load(resume_from / "rng.pt", weights_only=False))
        state = ckpt.read_trainer_state(resume_from)
        if dist.is_main:
            print(f"resuming {cfg.name} from {resume_from} (step {state['step']})", flush=True)

    logger = MetricsLogger(out_dir, dist.is_main, cfg.tensorboard)
    validator = Validator(cfg, processor, dist) if cfg.data.val else None
    if validator is not None and dist.is_main:
        said = (f"{validator.samples} validation samples" if validator.samples else
                "no validation samples in data.val (no source held out): no validation loss")  # fmt: skip
        print(f"{cfg.name}: {said}", flush=True)
    result = TrainResult(first_step=start)
    batches = iter(loader)
    last = min(steps, stop_at) if stop_at is not None else steps
    total_tokens, total_time = 0.0, 0.0
    for step in range(start, last):
        t0 = time.perf_counter()
        micro = [next(batches) for _ in range(cfg.schedule.grad_accum)]
        skips = [reason for batch in micro for _, reason in batch["skipped"]]
        for reason, n in dist.count_all(skips).items():  # every worker's, not only this one's
            state["skipped"][reason] = state["skipped"].get(reason, 0) + n
        local_targets = sum(
            int((b["labels"] != IGNORE_INDEX).sum()) for b in micro if not b["empty"]
        )
        (global_targets,) = dist.all_sum([float(local_targets)])
        loss_sum, tokens, weights = 0.0, 0, []
        for i, batch in enumerate(micro):
            # DDP all-reduces only after the last micro-batch. FSDP reduce-scatters each one:
            # its no_sync would keep whole unsharded gradients on every GPU.
            defer = isinstance(engine, DistributedDataParallel) and i < len(micro) - 1
            with engine.no_sync() if defer else contextlib.nullcontext():
                blank = batch["empty"]
                if blank:
                    batch = blank_batch(processor.pad_id)
                inputs = {k: batch[k] for k in MODEL_KEYS if batch.get(k) is not None}
                # A blank batch runs every branch, so every trainable part gets a (zero) grad.
                model.run_every_branch = blank or every_branch
                with _precision(cfg, dist):
                    out = engine(**to_device(inputs, dist.device))
                (out.loss_sum * (dist.world_size / max(global_targets, 1.0))).backward()
            loss_sum += float(out.loss_sum.detach())
            tokens += out.input_tokens
            if out.gate_weights is not None:
                weights.append(out.gate_weights.detach())
        grad_norm = _clip(engine, cfg)
        optimizer.step()
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        elapsed = time.perf_counter() - t0
        loss_total, tokens_total = dist.all_sum([loss_sum, float(tokens)])
        step_loss = loss_total / max(global_targets, 1.0)
        result.losses.append(step_loss)
        state["step"] = step + 1
        state["samples"] += cfg.global_batch(dist.world_size)
        total_tokens, total_time = total_tokens + tokens_total, total_time + elapsed
        if (step + 1) % cfg.log_every == 0 or step + 1 == last:
            metrics = {"loss": step_loss, "lr": lr, "grad_norm": grad_norm}
            metrics |= {"tokens_per_s": tokens_total / elapsed, **gate_stats(weights)}
            metrics |= {"skipped": sum(state["skipped"].values())}
            logger.log(step + 1, metrics)
        if (
            validator is not None
            and validator.samples
            and (step + 1 == last or (cfg.eval_every and (step + 1) % cfg.eval_every == 0))
        ):
            scores = validator(model, lambda: _precision(cfg, dist), every_branch)
            result.val_losses.append((step + 1, scores["val_loss"]))
            state.setdefault("val", []).append({"step": step + 1, **scores})
            logger.log(step + 1, scores)
        if step + 1 == last or (cfg.save_every and (step + 1) % cfg.save_every == 0):
            result.checkpoint = _save(model, engine, optimizer, scheduler, cfg, omni, state, dist)
    logger.close()
    result.skipped = dict(state["skipped"])
    result.tokens_per_s = total_tokens / total_time if total_time else 0.0
    result.model = model
    if dist.is_main and result.skipped:
        print(f"skipped samples by reason: {result.skipped}", flush=True)
    return result


def _clip(engine: torch.nn.Module, cfg: TrainConfig) -> float:
    """Clip to `max_grad_norm` (none: only measure); the norm is over every worker's shard."""
    from torch.distributed.tensor import DTensor

    params = [p for p in engine.parameters() if p.requires_grad and p.grad is not None]
    if not params:
        return 0.0
    limit = cfg.optim.max_grad_norm if cfg.optim.max_grad_norm is not None else float("inf")
    norm = torch.nn.utils.clip_grad_norm_(params, limit)
    return float(norm.full_tensor() if isinstance(norm, DTensor) else norm)


def _save(model, engine, optimizer, scheduler, cfg, omni, state, dist) -> Path:
    folder = cfg.output_path() / "checkpoints" / f"step-{state['step']:07d}"
    ckpt.save_checkpoint(
        folder,
        model=model,
        engine=engine,
        optimizer=optimizer,
        parts=saved_parts(cfg),
        is_main=dist.is_main,
        barrier=dist.barrier,
        scheduler_state=scheduler.state_dict(),
        trainer_state=state,
        omni_config=omni.to_dict(),
        train_config=cfg.model_dump(mode="json"),
    )
    if dist.is_main:
        print(f"checkpoint: {folder}", flush=True)
        if state["step"] == state["total_steps"]:
            ckpt.mark_final(folder)
    dist.barrier()
    return folder
