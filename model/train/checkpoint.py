"""Checkpoints: parts as safetensors, plus what an exact resume needs.

A checkpoint folder holds
- `model.safetensors` (or shards with their index: a converted release): the parameters of the parts this stage trained, named as in the model
  (`face_projector.mlp.0.weight`, `llm.model.layers.0...`); parts it loaded from earlier
  stages stay in those stages' checkpoints (`load_stage_parts` follows `init_from` to them),
  and frozen pretrained towers come from their sources;
- `omni_config.json` and `train_config.json`: what built the model and what trained it;
- `optimizer/`: the optimizer state as torch.distributed.checkpoint writes it, each worker its
  own shard (nothing is gathered), and `scheduler.pt`, `rng.pt` and `trainer_state.json`
  (step, counters, fingerprint): resuming from them continues the same loss curve.
The weights are gathered one tensor at a time and written in shards of at most
`SHARD_BYTES` by rank 0, so the host memory a checkpoint takes does not grow with the model
or the number of workers.
A later stage loads parts by name (`init_from`), so stage 1's projectors load into stage 3.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from model.weights import has_weights, read_tensors, weight_map, weights_metadata, write_shards

STATE = "trainer_state.json"


def part_state(state_dict: dict[str, torch.Tensor], parts: list[str]) -> dict[str, torch.Tensor]:
    prefixes = tuple(f"{p}." for p in parts)
    return {k: v for k, v in state_dict.items() if k.startswith(prefixes)}


def load_parts(
    model: nn.Module,
    checkpoint: str | Path,
    parts: list[str],
    *,
    dtype: torch.dtype | None = None,
) -> list[str]:
    """Copy the named parts from a checkpoint into `model`; every parameter must be present.

    Tensors are read one at a time. A parameter still on the meta device (a model built without
    weights) takes the loaded tensor itself, in `dtype` (default: the parameter's)."""
    folder = Path(checkpoint)
    if not has_weights(folder):
        raise FileNotFoundError(f"no checkpoint weights in {folder}")
    prefixes = tuple(f"{p}." for p in parts)
    saved = {k for k in weight_map(folder) if k.startswith(prefixes)}
    own = part_state(dict(model.named_parameters()), parts)
    missing = sorted(set(own) - saved)
    if missing:
        found = sorted({k.split(".")[0] for k in weight_map(folder)})
        raise ValueError(
            f"{folder} lacks {len(missing)} parameters of {parts} (e.g. {missing[0]}); "
            f"it holds the parts {found}"
        )
    with torch.no_grad():
        for name, tensor in read_tensors(folder, sorted(own)):
            param = own[name]
            if tensor.shape != param.shape:
                raise ValueError(
                    f"{folder}: {name} has shape {tuple(tensor.shape)}, "
                    f"the model {tuple(param.shape)} (another model size?)"
                )
            if param.is_meta:
                # A copy in torch's own (aligned) memory: kernels may round differently on
                # the buffer the file was read into.
                fresh = tensor.to(dtype or param.dtype, copy=True)
                _assign(model, name, fresh, param.requires_grad)
            else:
                param.copy_(tensor.to(param.dtype))
    return sorted(own)


def _assign(model: nn.Module, name: str, tensor: torch.Tensor, requires_grad: bool) -> None:
    owner, _, leaf = name.rpartition(".")
    module = model.get_submodule(owner)
    module._parameters[leaf] = nn.Parameter(tensor, requires_grad=requires_grad)


def saved_part_names(checkpoint: str | Path) -> list[str]:
    return json.loads(weights_metadata(checkpoint)["parts"])


def stage_parts(checkpoint: str | Path) -> list[str]:
    """Every part a stage ended with, trained or loaded: what inference takes from it."""
    folder = Path(checkpoint)
    config = folder / "train_config.json"
    inits = json.loads(config.read_text()).get("init_from", []) if config.is_file() else []
    loaded = {p for init in inits for p in init["parts"]}
    return sorted(set(saved_part_names(folder)) | loaded)


def load_stage_parts(
    model: nn.Module,
    checkpoint: str | Path,
    parts: list[str],
    *,
    dtype: torch.dtype | None = None,
) -> None:
    """Load `parts` as a stage left them: from its own weights if it trained them, else from
    the earlier checkpoint its `init_from` took them from (followed recursively)."""
    folder = Path(checkpoint)
    if not has_weights(folder):
        raise FileNotFoundError(f"no checkpoint weights in {folder}")
    own = [p for p in parts if p in saved_part_names(folder)]
    if own:
        load_parts(model, folder, own, dtype=dtype)
    rest = [p for p in parts if p not in own]
    config = folder / "train_config.json"
    inits = json.loads(config.read_text()).get("init_from", []) if config.is_file() else []
    for init in inits:
        take = [p for p in rest if p in init["parts"]]
        if take:
            load_stage_parts(model, init["checkpoint"], take, dtype=dtype)
            rest = [p for p in rest if p not in take]
    if rest:
        raise ValueError(
            f"{folder} neither trained nor loaded the parts {rest}; "
            f"it trained {saved_part_names(folder)}"
        )


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


SHARD_BYTES = 2 << 30  # 2 GiB of weights per file
OPTIMIZER = "optimizer"


def gathered_parts(
    model: nn.Module, parts: list[str], is_main: bool, max_bytes: int = SHARD_BYTES
) -> Iterator[dict[str, torch.Tensor]]:
    """The parameters of `parts` as whole CPU tensors, in groups of at most `max_bytes` (on
    rank 0; other ranks get empty groups). Every rank must run it to the end: a sharded
    parameter is gathered by all of them together."""
    from torch.distributed.tensor import DTensor

    prefixes = tuple(f"{p}." for p in parts)
    group: dict[str, torch.Tensor] = {}
    size, yielded = 0, False
    for name, param in model.named_parameters():
        if not name.startswith(prefixes):
            continue
        full = param.full_tensor() if isinstance(param, DTensor) else param
        if is_main:
            group[name] = full.detach().to("cpu").contiguous()
            size += full.numel() * full.element_size()
        if size >= max_bytes:
            yield group
            group, size, yielded = {}, 0, True
    if group or not yielded:
        yield group


def save_checkpoint(
    folder: Path,
    *,
    model: nn.Module,
    engine: nn.Module,
    optimizer: torch.optim.Optimizer,
    parts: list[str],
    is_main: bool,
    barrier: Callable[[], None],
    scheduler_state: dict[str, Any],
    trainer_state: dict[str, Any],
    omni_config: dict[str, Any],
    train_config: dict[str, Any],
    max_shard_bytes: int = SHARD_BYTES,
) -> Path:
    """Every rank calls it. Written to a temporary folder, then renamed: a checkpoint is
    complete or absent."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    tmp = folder.with_name(f".{folder.name}.tmp")
    if is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier()
    dcp.save(
        {"optimizer": get_optimizer_state_dict(engine, optimizer)},
        checkpoint_id=str(tmp / OPTIMIZER),
        no_dist=not _distributed(),
    )
    groups = gathered_parts(model, parts, is_main, max_shard_bytes)
    if not is_main:
        for _ in groups:  # the gathers need every rank
            pass
        barrier()
        return folder
    write_shards(tmp, groups, {"parts": json.dumps(sorted(parts))})
    torch.save(scheduler_state, tmp / "scheduler.pt")
    torch.save(rng_state(), tmp / "rng.pt")
    (tmp / STATE).write_text(json.dumps(trainer_state, indent=2) + "\n")
    (tmp / "omni_config.json").write_text(json.dumps(omni_config, indent=2) + "\n")
    (tmp / "train_config.json").write_text(json.dumps(train_config, indent=2) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    barrier()
    return folder


def _distributed() -> bool:
    import torch.distributed as torch_dist

    return torch_dist.is_available() and torch_dist.is_initialized()


def load_optimizer(engine: nn.Module, optimizer: torch.optim.Optimizer, folder: Path) -> None:
    """Each rank reads its shard of the optimizer state `save_checkpoint` wrote."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_optimizer_state_dict,
        set_optimizer_state_dict,
    )

    state = {"optimizer": get_optimizer_state_dict(engine, optimizer)}
    dcp.load(state, checkpoint_id=str(folder / OPTIMIZER), no_dist=not _distributed())
    set_optimizer_state_dict(engine, optimizer, state["optimizer"])


def mark_final(folder: Path) -> Path:
    """`<output>/final` names the finished stage's checkpoint (what `init_from` points at)."""
    link = folder.parent.parent / "final"
    tmp = link.with_name(".final.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(folder.relative_to(link.parent))
    os.replace(tmp, link)
    return link


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete `step-*` checkpoint under output_dir/checkpoints."""
    folder = output_dir / "checkpoints"
    steps = sorted(folder.glob("step-*")) if folder.is_dir() else []
    complete = [p for p in steps if (p / STATE).is_file()]
    return complete[-1] if complete else None


def read_trainer_state(folder: Path) -> dict[str, Any]:
    return json.loads((folder / STATE).read_text())
