"""`make annotate`, `make annotate-pull`: people label a run's clips in Label Studio.

`annotate` draws clips (curation/annotate/tasks.py) and adds them, with the pipeline's answers
as predictions, to the run's project for the task on the server (`annotate.url`); `pull` reads
every project's completed annotations back into `annotations/<task>.parquet` and measures
agreement between people and of the pipeline against people, recorded in run.json under
`annotation` (and shown by `make report`). The token comes from the environment variable
`annotate.token_env`, or from the file `make annotate-server` keeps beside its data; it is never
recorded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from curation.annotate.agreement import agreement
from curation.annotate.pull import rows_from_export, to_table
from curation.annotate.studio import Studio, StudioError
from curation.annotate.tasks import LABEL_CONFIGS, TASKS, sample, to_task
from curation.browse.db import RunDB
from curation.browse.layout import open_layout
from curation.core.fields import RELEASE_EMOTIONS
from curation.engine.config import ConfigError, PipelineConfig
from curation.instructions.speech import speaker, why_not
from curation.rundir import RunDir, write_table
from stages import registry

SERVER_DIR = "annotations/label-studio"  # make annotate-server's data, under the run
TOKEN_FILE = "token"
COLUMNS = ("clip_id", "source_id", "clip_path", "fields", "framing", "transcript", "boxes",
           "lip_sync", "lip_sync_offset_s", "fields_model", "signal_models")  # fmt: skip


def token_for(config: PipelineConfig, run: RunDir) -> str:
    token = os.environ.get(config.annotate.token_env, "")
    local = run.path / SERVER_DIR / TOKEN_FILE if run.storage.is_local else None
    if not token and local is not None and local.is_file():
        words = local.read_text().split()
        if not words:
            raise ConfigError(f"{local} is empty: delete it and restart make annotate-server")
        token = words[0]
    if not token:
        raise ConfigError(f"no Label Studio token: set {config.annotate.token_env}, or start the "
                          f"run's own server with make annotate-server RUN={run.name}")  # fmt: skip
    return token


def _clips(run: RunDir) -> list[dict[str, Any]]:
    db = RunDB(open_layout(run.storage, registry.default_folders()))
    present = [c for c in COLUMNS if c in db.columns]
    if "clip_path" not in present:
        raise ConfigError(f"{run.location} has no cut clips yet: curate it first")
    select = ", ".join(f'"{c}"' for c in present)
    return db.records(
        f"SELECT {select} FROM per_clip WHERE kept AND clip_path IS NOT NULL ORDER BY clip_id"
    )


def _local(run: RunDir, clip_path: str) -> Path:
    """A clip's file: its recorded path, or the same media/ path under the run's folder when the
    run was moved or copied since it was cut."""
    path = Path(clip_path)
    if run.path not in path.parents and "media" in path.parts:
        i = len(path.parts) - 1 - path.parts[::-1].index("media")
        moved = run.path.joinpath(*path.parts[i:])
        if moved.is_file():
            return moved
    return path


def _clip_folder(run: RunDir, clips: list[dict[str, Any]]) -> Path:
    """The folder under the run that holds every clip (Label Studio serves files only from a
    sub-folder of its document root, the run)."""
    parents = [str(_local(run, c["clip_path"]).parent) for c in clips] or [str(run.path / "media")]
    folder = Path(os.path.commonpath(parents))
    if folder == run.path or run.path not in folder.parents:
        raise ConfigError(f"annotate: the clips must be in a folder under {run.path} (cut.mode: "
                          f"file), not {folder}")  # fmt: skip
    return folder


def _source(run: RunDir, clip: dict[str, Any], task: str) -> str:
    """Where a prediction came from: the run, the stage and its model."""
    if task == "speech":
        return f"{run.name}/signals ({clip.get('signal_models') or 'unknown models'})"
    return f"{run.name}/structure ({clip.get('fields_model') or 'unknown model'})"


def _url(run: RunDir, clip_path: str) -> str:
    return f"/data/local-files/?d={quote(_local(run, clip_path).relative_to(run.path).as_posix())}"


def annotate(config: PipelineConfig, run: RunDir, task: str, n: int) -> str:
    """Add up to `n` new clips of `run` to its Label Studio project for `task`."""
    if task not in TASKS:
        raise ConfigError(f"annotate: unknown task {task!r}; known: {list(TASKS)}")
    if run.read_run_json() is None:
        raise ConfigError(f"no run at {run.location}: run `make curate RUN={run.name}` first")
    if not run.storage.is_local:
        raise ConfigError("annotate: Label Studio serves the clips as local files; the run must "
                          "be on a local disk (copy it down first)")  # fmt: skip
    cfg = config.annotate
    clips = _clips(run)
    if task == "speech":  # as the speech pairs require: a transcript, one speaker seen in sync
        ins = config.section("instructions")
        clips = [
            c for c in clips if why_not(c, ins.speech_min_lip_sync, ins.speech_max_offset_s) is None
        ]
    with Studio(cfg.url, token_for(config, run)) as studio:
        studio.check()
        # Two annotators for a share of the clips, for agreement: Label Studio hands them out.
        overlap = {
            "maximum_annotations": 2,
            "overlap_cohort_percentage": round(100 * cfg.overlap_share),
        }
        project = studio.project(
            f"{run.name}: {task}", LABEL_CONFIGS[task],
            description=f"{task} labels for the clips of run {run.name} ({run.location})", **overlap,
        )  # fmt: skip
        studio.configure(project, **overlap)  # a changed overlap_share applies from now on
        studio.serve_folder(project, str(_clip_folder(run, clips)))
        sent = {t["data"].get("clip_id") for t in studio.export(project)}
        picked = sample(clips, task, n, cfg.seed, sent)
        tasks = [to_task(c, task, _url(run, c["clip_path"]), _source(run, c, task), speaker)
                 for c in picked]  # fmt: skip
        added = studio.import_tasks(project, tasks)
    with run.lock():
        state = run.read_run_json() or {}
        projects = state.setdefault("annotation", {}).setdefault("projects", {})
        projects[task] = {"project": project, "url": cfg.url, "clips": len(sent) + added}
        run.write_run_json(state)
    eligible = len([c for c in clips if c["clip_id"] not in sent])
    return (f"annotate {task}: {added} clips added to project {project} ({len(sent) + added} in "
            f"all; {eligible - added} more could be) at {cfg.url}/projects/{project}")  # fmt: skip


def pull(config: PipelineConfig, run: RunDir) -> dict[str, Any]:
    """Every task's completed annotations into annotations/<task>.parquet, and the figures."""
    state = run.read_run_json() or {}
    projects = (state.get("annotation") or {}).get("projects") or {}
    if not projects:
        raise ConfigError(f"{run.location} has no annotation project: run make annotate first")
    exported: dict[str, list[dict[str, Any]]] = {}
    with Studio(config.annotate.url, token_for(config, run)) as studio:
        studio.check()
        for task, info in sorted(projects.items()):
            exported[task] = studio.export(int(info["project"]))  # all read before any write
    everything: list[dict[str, Any]] = []
    for task, tasks in exported.items():
        rows = rows_from_export(tasks, RELEASE_EMOTIONS)
        write_table(run.path / "annotations" / f"{task}.parquet", to_table(rows))
        everything += rows
    figures = agreement(everything)
    with run.lock():
        state = run.read_run_json() or {}
        state.setdefault("annotation", {})["agreement"] = figures
        run.write_run_json(state)
    return figures


def format_agreement(figures: dict[str, Any]) -> str:
    def show(value: Any) -> str:
        return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    return "\n".join(f"{k:28s} {show(v)}" for k, v in figures.items())


def local_server_dir(run: RunDir) -> Path:
    return run.path / SERVER_DIR


__all__ = ["StudioError", "annotate", "format_agreement", "local_server_dir", "pull", "token_for"]
