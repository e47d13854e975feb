"""`make export FORMAT=...`: a curated run as another system's training data.

- `humanomni`: the instruction pairs of `make instructions` in HumanOmni's format
  (curation/instructions/exports.py), written again from the pair shards;
- `omnihuman`: OmniHuman-1's condition-tagged clips and stage mixtures (omnihuman.py);
- `vispeak`: ViSpeak-Instruct's items from the timed events, one file per subtask, and the
  dataset_config entries that register them in ViSpeak's trainer (vispeak.py).

The writing runs in a worker of the run's runner (the driver only plans), under the run's
lock; what it wrote and its yields are recorded in run.json under `export_formats`.
"""

from __future__ import annotations

from typing import Any

from curation.engine.config import ConfigError, PipelineConfig
from curation.engine.runners import Runner
from curation.export.omnihuman import format_yield, write_omnihuman
from curation.rundir import RunDir

FORMATS = ("humanomni", "omnihuman", "vispeak")
# The columns a format needs in the run's last folder, and the stage that writes them.
NEEDS = {"omnihuman": ("framing", "signals"), "vispeak": ("events", "events")}


def last_folder(run: RunDir, state: dict[str, Any]) -> str:
    """The folder of the run's furthest stage that has finished shards."""
    for name, stage in reversed(list((state.get("stages") or {}).items())):
        folder = stage.get("folder", name)
        if run.units(folder):
            return folder
    raise ConfigError(f"{run.location}: no stage has finished a shard yet; curate it first")


def export(config: PipelineConfig, run: RunDir, fmt: str, runner: Runner) -> str:
    """Write one format's export of `run`; returns what to print."""
    state = run.read_run_json()
    if state is None:
        raise ConfigError(f"no run at {run.location}: run `make curate RUN={run.name}` first")
    if fmt == "humanomni":
        from curation.engine.instructions import write_exports
        from curation.instructions.generate import BRANCHES

        if not any(run.units(f"instructions/{b}") for b in BRANCHES):
            raise ConfigError(
                f"{run.location} has no instruction pairs: run `make instructions RUN={run.name}` first"
            )
        with run.lock():
            result = runner.submit(write_exports, run)
            _record(run, "humanomni", result)
        return f"exports: {result['samples']} mixed={result['mixed']} -> {run.uri('exports')}"
    if fmt not in FORMATS:
        raise ConfigError(f"export: unknown format {fmt!r}; known: {list(FORMATS)}")
    folder = last_folder(run, state)
    column, stage = NEEDS[fmt]
    schema = run.storage.read_schema(run.shard_file(folder, sorted(run.units(folder))[0]))
    if column not in schema.names:
        raise ConfigError(
            f"{run.location}: {folder}/ has no `{column}` column: curate with the {stage} "
            "stage in `stages:`"
        )
    if fmt == "vispeak":
        from curation.export.vispeak import write_vispeak

        with run.lock():
            result = runner.submit(write_vispeak, run, folder, config.export.vispeak)
            _record(run, "vispeak", result)
        entries = "\n".join(f"{_python_name(t)} = {e!r}" for t, e in result["entries"].items())
        return (f"vispeak: {result['items']} items from {result['clips']} clips {result['tasks']}"
                f" -> {run.uri('exports/vispeak')}/\n"
                "ViSpeak's dataset_config entries (paste into vispeak/config/dataset_config.py "
                f"and name them in its dataset_use; also in dataset_config.json):\n{entries}")  # fmt: skip
    with run.lock():
        result = runner.submit(write_omnihuman, run, folder, config.export.omnihuman)
        _record(run, "omnihuman", result)
    return (f"{format_yield(result)}\n-> {run.uri('exports/omnihuman.jsonl')}, "
            f"{run.uri('exports/omnihuman_stages.json')}")  # fmt: skip


def _python_name(task: str) -> str:
    """A subtask as a Python name in ViSpeak's dataset_config style: CuratedVisualWakeUp."""
    return "Curated" + "".join(part.capitalize() for part in task.split("_"))


def _record(run: RunDir, fmt: str, result: dict[str, Any]) -> None:
    state = run.read_run_json() or {}
    state.setdefault("export_formats", {})[fmt] = result
    run.write_run_json(state)
