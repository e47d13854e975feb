"""Typed pipeline configuration: YAML profiles in configs/curate/ plus `--set a.b=value` overrides.

Every section is a pydantic model with `extra="forbid"`, so an unknown key or a bad value fails
before any work starts, with an error that names the field (`temporal.min_keyframes: ...`).
The sections of model stages live in config_models.py, their base in config_base.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from curation.config_base import (  # noqa: F401  (ConfigError, parse_override: public here)
    ConfigError,
    Resources,
    Section,
    TaskResources,
    load_data_model,
    load_yaml_model,
    parse_override,
)
from curation.config_export import ExportConfig
from curation.config_models import (
    BoxesConfig,
    BriefCaptionConfig,
    ConsensusConfig,
    DetailedCaptionConfig,
    InstructionsConfig,
    StructureConfig,
)
from curation.config_signals import EventsConfig, SignalsConfig

STAGE_NAMES = (
    "probe",
    "scenes",
    "temporal",
    "cut",
    "boxes",
    "signals",
    "events",
    "brief_caption",
    "embed",
    "dedup",
    "detailed_caption",
    "consensus",
    "structure",
)


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


class ProbeConfig(Section):
    min_short_side: int = Field(
        480, ge=1, description="displayed short side below this is rejected"
    )
    timeout_s: float = Field(60.0, gt=0)
    threads: int = Field(8, ge=1, description="ffprobe calls in flight per worker")
    resources: Resources = Resources(cpus=0.5, concurrency=8)


class ScenesConfig(Section):
    detector: Literal["adaptive", "content", "threshold", "hash", "histogram"] = "adaptive"
    # None keeps the detector's own default threshold.
    threshold: float | None = Field(None, gt=0)
    min_scene_len_frames: int = Field(15, ge=1, description="detector: frames between two cuts")
    analysis_width: int = Field(256, ge=16, description="frames are decoded at this width")
    # PySceneDetect's thresholds were tuned on frames shrunk by cv2 INTER_LINEAR, which at large
    # factors samples a 2x2 neighbourhood (close to point sampling); ffmpeg's `neighbor` scaler
    # reproduces its goldens exactly, area averaging does not (see README, "Scene detection").
    scale_flags: str = "neighbor"
    # Keyframes and dynamics (stages/keyframes.py) on grey frames `keyframe_width` wide: a
    # keyframe when, in some cell of a `keyframe_grid`-square raster, more than
    # `keyframe_cell_share` of the pixels changed by more than `keyframe_pixel_delta` levels
    # since the last keyframe (a person small in a wide shot moves within a few cells).
    # Defaults from the labelled clips of `make bench-temporal-quality`.
    keyframe_width: int = Field(128, ge=16)
    keyframe_grid: int = Field(16, ge=1, le=64)
    keyframe_pixel_delta: int = Field(20, ge=1, le=255)
    keyframe_cell_share: float = Field(0.25, gt=0, le=1)
    flash_delta: float = Field(12.0, gt=0, description="mean brightness jump of a flash, levels")
    jump_share: float = Field(
        0.6, gt=0, le=1, description="pixels changed after global alignment: a jump (a cut)"
    )
    min_duration_s: float = Field(1.0, ge=0)
    max_duration_s: float = Field(30.0, gt=0, description="longer scenes are split into windows")
    max_lost_share: float = Field(
        0.02, ge=0, le=1,
        description="a source that logs decode errors and decodes fewer frames than this "
        "share below its probed count is rejected as corrupt_stream",
    )  # fmt: skip
    timeout_s: float = Field(3600.0, gt=0)
    threads: int = Field(2, ge=1, description="sources decoded at once per worker")
    resources: Resources = Resources(cpus=1, concurrency=4)

    @model_validator(mode="after")
    def _bounds(self) -> ScenesConfig:
        # Long scenes are split into equal windows of at least max/2: keep those above the minimum.
        if self.max_duration_s < 2 * self.min_duration_s:
            raise ValueError("max_duration_s must be at least twice min_duration_s")
        return self


class TemporalConfig(Section):
    min_keyframes: int = Field(2, ge=1, description="fewer keyframes: the clip is static")
    # Chaotic: change no camera or person makes (make bench-temporal-quality).
    max_flash_rate: float = Field(1.0, ge=0, description="flashes per second; more: chaotic")
    max_jump_rate: float = Field(1.0, ge=0, description="jumps per second; more: chaotic")
    max_flicker: float = Field(0.3, gt=0, le=1, description="change undoing itself; more: chaotic")
    score_only: bool = Field(False, description="record verdicts without rejecting")
    resources: Resources = Resources(cpus=0.25, concurrency=2)


class CutConfig(Section):
    mode: Literal["files", "virtual"] = "files"
    # Same defaults as PySceneDetect's split-video, so benchmarks compare like with like.
    video_codec: str = "libx264"
    preset: str = "veryfast"
    crf: int = Field(22, ge=0, le=63)
    audio_codec: str = "aac"
    audio_bitrate: str = "128k"
    container: Literal["mp4", "mkv"] = "mp4"
    # x264 with more than one thread wrote different bytes for the same clip from run to run
    # when one ffmpeg process cut several seek groups (tests/stages/test_cut.py); one thread
    # per clip is reproducible, and `threads` ffmpeg processes run side by side instead.
    encoder_threads: int = Field(
        1, ge=0, description="encoder threads per clip; 1 is reproducible, 0: ffmpeg decides"
    )
    threads: int = Field(2, ge=1, description="ffmpeg processes at once per worker")
    seek_gap_s: float = Field(10.0, ge=0, description="clips further apart get their own seek")
    max_seeks: int = Field(8, ge=1, description="at most this many seek positions per source")
    timeout_s: float = Field(3600.0, gt=0)
    resources: Resources = Resources(cpus=1, concurrency=2)


class EmbedConfig(Section):
    """Caption embeddings for dedup (stages/embed.py), stored with each shard's manifest."""

    model: str = Field(
        "bundled:all-MiniLM-L6-v2", description="sentence-transformers model name or local path"
    )
    batch_size: int = Field(256, ge=1, description="captions a model call")
    device: str | None = Field(None, description="None: the GPU the worker was given, else CPU")
    dtype: Literal["float16", "float32"] = Field(
        "float16", description="stored precision (float16: 768 bytes a 384-d vector)"
    )
    resources: Resources = Resources(cpus=1, gpus="auto", concurrency=2)


class DedupConfig(Section):
    """Semantic de-duplication of brief captions (curation/dedup.py, curation/dedup_scale.py)."""

    threshold: float = Field(0.68, gt=0, le=1, description="cosine similarity of near-duplicates")
    exact_max: int = Field(20_000, ge=1, description="up to this many clips: exact all-pairs")
    partition_size: int = Field(2000, ge=10, description="mean K-means partition above that")
    boundary_margin: float = Field(
        0.12, ge=0, le=2, description="a vector also joins partitions this much less similar"
    )
    probes: int = Field(16, ge=1, description="at most this many partitions a vector joins")
    coarse_size: int = Field(
        500_000, ge=1000, description="rows a pair-search task holds (a group of partitions)"
    )
    train_sample: int = Field(100_000, ge=1000, description="vectors K-means trains on, at least")
    search_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="its matrix products; auto: bfloat16 where native (same result)"
    )
    block_rows: int = Field(
        200_000, ge=1000, description="rows (whole shards) one read or assign task takes"
    )
    # The coordinating task (it holds the pairs and one key a clip), then each of its tasks
    # (read a block, assign a block, search a partition: memory grows with coarse_size).
    resources: TaskResources = TaskResources(cpus=1)
    tasks: TaskResources = TaskResources(cpus=1)

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        moved = {"embedder": "embed.model", "embed_batch_size": "embed.batch_size",
                 "device": "embed.device"}  # fmt: skip
        if isinstance(data, dict):
            for old, new in moved.items():
                if old in data:
                    raise ValueError(f"dedup.{old} is now {new} (stages/embed.py)")
        return data


class PipelineConfig(Section):
    # Printed loudly at start and stored in run.json (the offline profile uses it).
    notice: str | None = None
    stages: list[str] = list(STAGE_NAMES)
    run: RunConfig = RunConfig()
    runner: RunnerConfig = RunnerConfig()
    sources: SourcesConfig = SourcesConfig()
    probe: ProbeConfig = ProbeConfig()
    scenes: ScenesConfig = ScenesConfig()
    temporal: TemporalConfig = TemporalConfig()
    cut: CutConfig = CutConfig()
    brief_caption: BriefCaptionConfig = BriefCaptionConfig()
    embed: EmbedConfig = EmbedConfig()
    dedup: DedupConfig = DedupConfig()
    boxes: BoxesConfig = BoxesConfig()
    signals: SignalsConfig = SignalsConfig()
    events: EventsConfig = EventsConfig()
    detailed_caption: DetailedCaptionConfig = DetailedCaptionConfig()
    consensus: ConsensusConfig = ConsensusConfig()
    structure: StructureConfig = StructureConfig()
    instructions: InstructionsConfig = InstructionsConfig()
    export: ExportConfig = ExportConfig()
    # Folder of the tiny random-weight test models; built on first use (offline profile).
    tiny_models: Path | None = None

    @model_validator(mode="after")
    def _known_stages(self) -> PipelineConfig:
        unknown = [s for s in self.stages if s not in STAGE_NAMES]
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; known: {list(STAGE_NAMES)}")
        if len(set(self.stages)) != len(self.stages):
            raise ValueError("a stage is listed twice")
        if not self.stages or self.stages[0] != "probe":
            raise ValueError("the first stage must be 'probe'")
        consensus, detailed = self.consensus, self.detailed_caption
        if "consensus" in self.stages and detailed.min_candidates < consensus.min_support:
            raise ValueError(
                f"detailed_caption.min_candidates ({detailed.min_candidates}) is below "
                f"consensus.min_support ({consensus.min_support}): such clips could never agree"
            )
        return self

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


def manifest_settings(obj: Any) -> Any:
    """A dumped config without its operational settings (what the fingerprint covers)."""
    if isinstance(obj, dict):
        return {k: manifest_settings(v) for k, v in sorted(obj.items()) if k not in OPERATIONAL}
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


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> PipelineConfig:
    """Load a profile (or the defaults when `path` is None) and apply `--set` overrides."""
    return load_yaml_model(PipelineConfig, path, overrides)


def recorded_config(state: dict[str, Any], overrides: list[str] | None = None) -> PipelineConfig:
    """The config a run recorded in its run.json, plus `--set` overrides."""
    return load_data_model(PipelineConfig, state["config"], overrides, "the run's recorded config")
