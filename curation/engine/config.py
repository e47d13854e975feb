"""The whole config of a run: YAML profiles in configs/curate/ plus `--set a.b=value` overrides.

Every section is a pydantic model with `extra="forbid"`, so an unknown key or a bad value fails
before any work starts, with an error that names the field (`temporal.min_keyframes: ...`).
A stage's section is declared beside the stage (the type of its `cfg`) and keyed by the stage's
name; `config_model()` builds the config's model from the stage table (stages/registry.py) plus
the sections here that belong to the run itself (run, runner, sources, export, annotate). Its base,
`Section`, and the loaders are in curation/core/config.py.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, create_model, model_validator

from curation.annotate.config import AnnotateConfig
from curation.core import schemas
from curation.core.config import (  # noqa: F401  (ConfigError, parse_override: public here)
    ConfigError,
    Section,
    load_data_model,
    load_yaml_model,
    parse_override,
)
from curation.export.config import ExportConfig
from stages import registry

log = logging.getLogger(__name__)


class RunnerConfig(Section):
    kind: Literal["local", "ray"] = "ray"
    # None: RAY_ADDRESS from the environment if set, else a local Ray instance.
    address: str | None = None
    progress: bool = True
    fit_check: bool = Field(
        True,
        description="fail before any work when a stage asks for more than the largest node "
        "offers (turn off on an autoscaling cluster whose nodes are not up yet)",
    )


class RunConfig(Section):
    # A folder, or an object-store URI (s3://bucket/prefix) that every node can reach.
    root: str = "data_manifests"
    shard_size: int = Field(8, ge=1, description="sources per shard: the unit of probe and scenes")
    clips_per_shard: int = Field(
        64, ge=1, description="clips per shard after the scene split: the unit of later stages"
    )


class SourcesConfig(Section):
    extensions: list[str] = [
        ".mp4",
        ".mkv",
        ".mov",
        ".webm",
        ".avi",
        ".m4v",
        ".mpg",
        ".mpeg",
        ".ts",
    ]
    path_column: str = "path"


class PipelineConfig(Section):
    """The sections that belong to the run; `config_model()` adds one per stage."""

    # Printed loudly at start and stored in run.json (the offline profile uses it).
    notice: str | None = None
    stages: list[str] = Field(default_factory=registry.default_order)
    run: RunConfig = RunConfig()
    runner: RunnerConfig = RunnerConfig()
    sources: SourcesConfig = SourcesConfig()
    export: ExportConfig = ExportConfig()
    annotate: AnnotateConfig = AnnotateConfig()
    # Folder of the tiny random-weight test models; built on first use (offline profile).
    tiny_models: Path | None = None

    @model_validator(mode="after")
    def _known_stages(self) -> PipelineConfig:
        table = registry.stage_classes()
        runnable = [name for name, cls in table.items() if cls.curate]
        unknown = [s for s in self.stages if s not in runnable]
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; known: {runnable}")
        if len(set(self.stages)) != len(self.stages):
            raise ValueError("a stage is listed twice")
        if not self.stages:
            raise ValueError("no stage is listed")
        first = table[self.stages[0]]
        if not set(first.reads) <= set(schemas.INPUTS.names):
            raise ValueError(
                f"the first stage must read only the source list {schemas.INPUTS.names} "
                f"(probe does); {first.name} reads {list(first.reads)}"
            )
        for name in self.stages:
            table[name].check_config(self)
        return self

    def section(self, name: str) -> Section:
        """A stage's config section."""
        return getattr(self, name)

    def fingerprint(self) -> str:
        """Hash of everything that changes the manifests (not runner, resources or paths)."""
        blob = json.dumps(manifest_settings(self.model_dump(mode="json")), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# Settings that change how and where the work runs, never what it writes: a run may resume
# with other values of these (more workers, another server address, a longer timeout).
OPERATIONAL = frozenset(
    {"resources", "prepare", "tasks", "runner", "run", "notice", "threads", "device", "base_url",
     "api_key_env", "concurrency", "timeout_s", "retries", "backoff_s", "gpu_memory_utilization"}
)  # fmt: skip


# Settings of the jobs that rewrite their files whole each time they run (`make instructions`'
# exports and `make export`): they change no manifest, so a run may resume with other values.
REWRITTEN = frozenset({"val_share", "export", "annotate"})


def manifest_settings(obj: Any) -> Any:
    """A dumped config without its operational settings (what the fingerprint covers)."""
    if isinstance(obj, dict):
        return {k: manifest_settings(v) for k, v in sorted(obj.items())
                if k not in OPERATIONAL | REWRITTEN}  # fmt: skip
    if isinstance(obj, list):
        return [manifest_settings(v) for v in obj]
    return obj


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The manifest settings that differ, as `section.field: old -> new` lines."""

    def flat(obj: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(obj, dict):
            out: dict[str, Any] = {}
            for k, v in obj.items():
                out.update(flat(v, f"{prefix}{k}."))
            return out
        return {prefix[:-1]: obj}

    a, b = flat(manifest_settings(old)), flat(manifest_settings(new))
    missing = object()
    return [
        f"{key}: {a.get(key, '(unset)')!r} -> {b.get(key, '(unset)')!r}"
        for key in sorted(set(a) | set(b))
        if a.get(key, missing) != b.get(key, missing)
    ]


_models: dict[int, type[PipelineConfig]] = {}


def _section_order(item: tuple[str, Any]) -> tuple[bool, float, str]:
    """Stage sections in the default order, then the others by name (how `config` prints)."""
    order = item[1].order
    return (order is None, order or 0.0, item[0])


def config_model() -> type[PipelineConfig]:
    """PipelineConfig with one section per stage of the table (rebuilt when the table changes:
    a registered plugin stage brings its section)."""
    if registry.version not in _models:
        sections: dict[str, Any] = {
            name: (cls.config_class(), Field(default_factory=cls.config_class()))
            for name, cls in sorted(registry.stage_classes().items(), key=_section_order)
        }
        clash = set(sections) & set(PipelineConfig.model_fields)
        if clash:
            raise ConfigError(f"stage name(s) {sorted(clash)} clash with the run's own sections")
        _models.clear()
        _models[registry.version] = create_model(  # type: ignore[call-overload]
            "PipelineConfig", __base__=PipelineConfig, __module__=__name__, **sections
        )
    return _models[registry.version]


# Settings that are gone, and what replaced them. A run recorded with one still loads (browse,
# report, export read it; a resume then names the change); a profile that sets one fails.
REMOVED: dict[tuple[str, str], str] = {
    ("scenes", "max_lost_share"): "frames are judged by located damage now (scenes.damaged_clips)",
}


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> PipelineConfig:
    """Load a profile (or the defaults when `path` is None) and apply `--set` overrides."""
    try:
        return load_yaml_model(config_model(), path, overrides)
    except ConfigError as error:
        for (section, key), why in REMOVED.items():
            if f"{section}.{key}: unknown key" in str(error):
                raise ConfigError(f"{error}\n  ({section}.{key} was removed: {why})") from None
        raise


def recorded_config(state: dict[str, Any], overrides: list[str] | None = None) -> PipelineConfig:
    """The config a run recorded in its run.json, plus `--set` overrides."""
    data = copy.deepcopy(state["config"])
    for (section, key), why in REMOVED.items():
        if isinstance(data.get(section), dict) and data[section].pop(key, None) is not None:
            log.warning("the run recorded %s.%s, which was removed: %s", section, key, why)
    return load_data_model(config_model(), data, overrides, "the run's recorded config")
