"""What a stage's checkpoints were trained on: its config and the content of its data files.

A stage resumes from (or counts as finished at) a checkpoint only when the fingerprint matches:
the same run, data, parts, recipe and schedule. Settings that change nothing about the result
(logging, how often to save, loader workers, activation checkpointing, where the outputs go)
are left out.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from model.train.config import TrainConfig

# Dotted fields of the stage config that do not change what is trained.
IGNORED = (
    "log_every",
    "tensorboard",
    "save_every",
    "output_dir",
    "data.num_workers",
    "gradient_checkpointing",  # recomputes the same activations
    "distributed.cpus_per_worker",
    # Validation scores the model, in eval mode under no_grad, and draws no random number.
    "data.val",
    "data.val_max_samples",
    "eval_every",
)
_CHUNK = 1 << 20


class CheckpointMismatch(RuntimeError):
    """The output folder holds checkpoints of another config or other data."""


def _digest(path: Path) -> str:
    """blake2b of a file, or of every file of a folder (names and contents, in order)."""
    h = hashlib.blake2b(digest_size=16)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        h.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    return h.hexdigest()


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _flat(value, f"{name}.")
        else:
            out[name] = value
    return out


def fingerprint(cfg: TrainConfig) -> dict[str, Any]:
    """{"config": dotted field → value, "data": data file → content digest}."""
    config = {k: v for k, v in _flat(cfg.model_dump(mode="json")).items() if k not in IGNORED}
    data = {p: _digest(Path(p)) for p in cfg.data.train if Path(p).exists()}
    return {"config": config, "data": data}


def differences(saved: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """What differs, by name ("optim.lr", "data data_manifests/x/exports/face.json")."""
    if not saved:
        return ["(the checkpoint records no fingerprint)"]
    out = []
    for kind in ("config", "data"):
        old, new = saved.get(kind) or {}, current[kind]
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                out.append(key if kind == "config" else f"data {key}")
    return out


def check_resumable(
    state: dict[str, Any], cfg: TrainConfig, folder: Path, current: dict[str, Any] | None = None
) -> None:
    """Raise CheckpointMismatch naming what differs, unless `folder` was trained like `cfg`
    (`current`: its fingerprint, when already computed)."""
    diff = differences(state.get("fingerprint"), current or fingerprint(cfg))
    if diff:
        shown = ", ".join(diff[:6]) + (f" and {len(diff) - 6} more" if len(diff) > 6 else "")
        raise CheckpointMismatch(
            f"{cfg.name}: {folder} was trained with other settings or data ({shown}); "
            f"--no-resume trains it again from step 0 (the old checkpoints are moved aside), "
            f"or give another output_dir"
        )
