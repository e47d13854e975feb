"""The base of every config: unknown keys are errors, assignments are validated, and YAML
files with `--set a.b=value` overrides load into a model with errors that name the field.
Both the curation pipeline's config and the trainer's load through `load_yaml_model`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Answers that start like this are refusals, not captions (every model stage checks them).
REFUSALS = ["I'm sorry", "I am sorry", "I cannot", "I can't", "As an AI"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class _Reservation(Section):
    """What one worker needs (the fields every kind of worker has).

    `gpus: auto` (the default of stages that run models) reserves what the stage's models
    need: a vLLM engine its `tensor_parallel_size`, a local model one GPU where the cluster
    has GPUs and none where it has not; a number (fractions allowed) is taken as given.
    """

    cpus: float = Field(1.0, ge=0)
    gpus: float | Literal["auto"] = Field(
        0.0, description="per worker; 'auto': what its models need"
    )
    memory_gb: float | None = Field(None, gt=0)

    @field_validator("gpus")
    @classmethod
    def _gpus(cls, value: float | str) -> float | str:
        if value != "auto" and float(value) < 0:
            raise ValueError("must be 'auto' or a number >= 0")
        return value


class TaskResources(_Reservation):
    """What the one task of a global stage (dedup) needs."""

    @property
    def concurrency(self) -> int:
        return 1


class Resources(_Reservation):
    """What one worker of a stage needs, and how many workers may run at once."""

    concurrency: int = Field(4, ge=1, description="maximum parallel workers of this stage")


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the field."""


def parse_override(text: str) -> tuple[list[str], Any]:
    """`temporal.min_keyframes=3` -> (["temporal", "min_keyframes"], 3); values are YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.field=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override {text!r} has an empty field name")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from exc
    return parts, value


def _apply_override(data: dict[str, Any], parts: list[str], value: Any) -> None:
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override: {'.'.join(parts[: i + 1])} is not a section")
        node = child
    node[parts[-1]] = value


def _format_error(exc: ValidationError, origin: str) -> str:
    lines = [f"invalid config ({origin}):"]
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "<top level>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {field}: {msg}")
    return "\n".join(lines)


M = TypeVar("M", bound=BaseModel)


def load_yaml_model(
    cls: type[M], path: str | Path | None = None, overrides: list[str] | None = None
) -> M:
    """Validate a YAML file (or the defaults when `path` is None) plus overrides into `cls`."""
    data: dict[str, Any] = {}
    origin = "defaults"
    if path is not None:
        origin = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        data = loaded or {}
    return load_data_model(cls, data, overrides, origin)


def load_data_model(
    cls: type[M], data: dict[str, Any], overrides: list[str] | None = None, origin: str = "data"
) -> M:
    """Validate a mapping (e.g. the config a run recorded) plus overrides into `cls`."""
    data = copy.deepcopy(data)
    for text in overrides or []:
        parts, value = parse_override(text)
        _apply_override(data, parts, value)
    if overrides:
        origin += " with --set " + " ".join(overrides)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, origin)) from None
