"""Typed training config: one recipe, the stages are YAML files in configs/train/.

A stage file says which data, which parts train (every other part is frozen), the learning
rate and steps, and which parts to load from earlier stages' checkpoints by name. Unknown keys
and bad values fail before any work, naming the field (`optim.lr: ...`).

`{run}` (the curation run trained on, `run`) and `{name}` (the stage's name) in `data.train`,
`data.val`, `output_dir`, `init_from` checkpoints and `model.base` are replaced when the config
is validated, so a stage's outputs live under its run (`runs/<run>/<stage>/` by default) and the
config recorded with a checkpoint names the files it really read.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from curation.core.config import Section, load_yaml_model
from model.config import PARTS
from model.sizes import SIZES

# Parameter-free parts: nothing to train.
_NEVER_TRAINED = {"compressor"}


def _known_parts(value: list[str]) -> list[str]:
    unknown = [p for p in value if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown parts {unknown}; parts are {', '.join(PARTS)}")
    return value


class ModelSection(Section):
    size: str = Field("tiny", description="a named size: " + ", ".join(SIZES))
    # A checkpoint folder (a converted release: `python -m model.convert`) whose omni config
    # (components, shapes, compat) replaces `size`, and whose parts are the starting weights;
    # `init_from` then replaces parts of it.
    base: str | None = None
    # For the tiny size: where its random-weight components live (built there when missing).
    tiny_dir: str = "models/tiny/omni"
    # Branch pretraining (stage 1a): only this branch's projector runs, at weight 1 (the gate
    # and the other, untrained projectors stay out of it).
    branch: Literal["face", "body", "interaction"] | None = None

    @field_validator("size")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in SIZES:
            raise ValueError(f"unknown size {value!r}; one of {', '.join(SIZES)}")
        return value


class InitFrom(Section):
    """Parts to load, by name, from an earlier stage's checkpoint folder."""

    checkpoint: str
    parts: list[str] = Field(min_length=1)

    @field_validator("parts")
    @classmethod
    def _parts(cls, value: list[str]) -> list[str]:
        return _known_parts(value)


class DataSection(Section):
    # Exported HumanOmni JSON/JSONL, instruction Parquet folders, or audio-text JSON/Parquet.
    # `{run}` in a path is replaced by the --run argument (data_manifests/<run>/...).
    train: list[str] = Field(min_length=1)
    # Held-out samples (`make instructions` writes them under exports/val/): the validation
    # loss every `eval_every` steps and at the end, on the first `val_max_samples` of them.
    val: list[str] = []
    val_max_samples: int = Field(256, ge=1)
    media_root: str | None = None
    default_audio_instruction: str = "Describe the audio."
    # Stage 3: a copy without audio of this fraction of clips that have audio (1.0: every one).
    drop_audio_rate: float = Field(0.0, ge=0, le=1)
    max_text_tokens: int = Field(2048, ge=16)
    # The face branch sees face crops from the curated face boxes (the exports' face_track)
    # instead of the full frames (as released); a clip without faces keeps its full frames.
    face_crops: bool = False
    on_error: Literal["skip", "fail"] = "skip"
    num_workers: int = Field(2, ge=0)
    shuffle: bool = True


class OptimSection(Section):
    lr: float = Field(gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    max_grad_norm: float | None = Field(1.0, gt=0)


class ScheduleSection(Section):
    # The length: optimizer steps, or epochs over the training samples (one of the two).
    steps: int | None = Field(None, ge=1)
    epochs: float | None = Field(None, gt=0)
    micro_batch_size: int = Field(1, ge=1, description="samples per worker per forward")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step")

    @model_validator(mode="after")
    def _one_length(self) -> ScheduleSection:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of steps and epochs")
        return self

    def total_steps(self, num_samples: int, global_batch: int) -> int:
        if self.steps is not None:
            return self.steps
        return max(1, math.ceil(self.epochs * num_samples / global_batch))


class DistributedSection(Section):
    # 0: one process, no Ray. ≥1: Ray Train's TorchTrainer with that many workers.
    workers: int = Field(0, ge=0)
    use_gpu: bool = False
    # ddp: a replica per worker; fsdp: parameters, gradients and optimizer state sharded
    # (the 7B stages). Both run on CPU (gloo) too.
    strategy: Literal["ddp", "fsdp"] = "ddp"
    cpus_per_worker: float = Field(1.0, gt=0)


DEFAULT_OUTPUT_DIR = "runs/{run}/{name}"


def _resolve(data: dict[str, Any]) -> dict[str, Any]:
    """`{run}` and `{name}` replaced in every path field of a raw stage config."""
    run, name = str(data.get("run", "sample")), str(data.get("name", ""))

    def sub(value: Any) -> Any:
        return (
            value.replace("{run}", run).replace("{name}", name) if isinstance(value, str) else value
        )

    data = dict(data)
    data["output_dir"] = sub(data.get("output_dir", DEFAULT_OUTPUT_DIR))
    for key in ("train", "val"):
        if isinstance(data.get("data"), dict) and isinstance(data["data"].get(key), list):
            data["data"] = {**data["data"], key: [sub(p) for p in data["data"][key]]}
    if isinstance(data.get("init_from"), list):
        data["init_from"] = [
            {**i, "checkpoint": sub(i.get("checkpoint"))} if isinstance(i, dict) else i
            for i in data["init_from"]
        ]
    if isinstance(data.get("model"), dict) and "base" in data["model"]:
        data["model"] = {**data["model"], "base": sub(data["model"]["base"])}
    return data


class TrainConfig(Section):
    name: str
    # The curation run the data paths name (data_manifests/<run>/...) and the outputs live under.
    run: str = Field("sample", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    model: ModelSection = ModelSection()
    init_from: list[InitFrom] = []
    trainable: list[str] = Field(min_length=1, description="parts that train; the rest freeze")
    data: DataSection
    optim: OptimSection
    schedule: ScheduleSection
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    gradient_checkpointing: bool = True
    output_dir: str = DEFAULT_OUTPUT_DIR
    save_every: int = Field(0, ge=0, description="steps between checkpoints; 0: only at the end")
    log_every: int = Field(1, ge=1)
    eval_every: int = Field(0, ge=0, description="steps between validation passes; 0: at the end")
    tensorboard: bool = True
    seed: int = 0
    distributed: DistributedSection = DistributedSection()

    @model_validator(mode="before")
    @classmethod
    def _placeholders(cls, data: Any) -> Any:
        return _resolve(data) if isinstance(data, dict) else data

    @field_validator("trainable")
    @classmethod
    def _trainable(cls, value: list[str]) -> list[str]:
        _known_parts(value)
        fixed = sorted(set(value) & _NEVER_TRAINED)
        if fixed:
            raise ValueError(f"{fixed} have no parameters to train")
        return value

    def global_batch(self, world_size: int) -> int:
        return self.schedule.micro_batch_size * self.schedule.grad_accum * world_size

    def output_path(self) -> Path:
        return Path(self.output_dir)


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    return load_yaml_model(TrainConfig, path, overrides)
