"""Documents and task files for one evaluation: each project task's documents read from its
dataset's layout (`model.eval.layouts`) into `<out>/docs/<task>.jsonl`, and a task file in
`<out>/tasks/` that includes the shipped one (`model/eval/tasks/`) and points it at them."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import yaml

from curation.storage import atomic_local_write
from model.eval.layouts import READERS, LayoutError, Loaded

log = logging.getLogger(__name__)

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
SETS_DIR = Path(__file__).resolve().parent / "sets"
PROJECT = Path(__file__).resolve().parents[2]
PROJECT_TASKS = tuple(READERS)  # dfew, mafw, humanvbench, asr, dfec, vispeak, run_val
DATA_TASKS = tuple(t for t in PROJECT_TASKS if t != "run_val")


def task_source(task: str, data: Path | None, run_dir: Path | None) -> Path:
    """Where a project task's data is: the run's folder (run_val), `<data>/<task>`, or the
    project's small labelled set."""
    if task == "run_val":
        if run_dir is None:
            raise LayoutError(Path("run_val"), "needs a curated run (--run-dir)")
        return run_dir
    return (data if data is not None else SETS_DIR) / task


def read_task(task: str, source: Path, fold: int = 1) -> Loaded:
    if not source.exists():
        raise LayoutError(source, f"no {task} data here")
    return READERS[task](source, fold)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    atomic_local_write(path, lambda tmp: tmp.write_text(text))


def relative_docs(docs: list[dict[str, Any]], root: Path = PROJECT) -> list[dict[str, Any]]:
    """The documents with media paths relative to `root` (the shipped sets' documents, which
    the tasks resolve against the project folder)."""
    out = []
    for doc in docs:
        doc = dict(doc)
        for key in ("video", "audio"):
            if key in doc:
                doc[key] = Path(doc[key]).resolve().relative_to(root.resolve()).as_posix()
        out.append(doc)
    return out


def prepare(
    tasks: list[str], out: Path, data: Path | None, run_dir: Path | None, fold: int = 1
) -> dict[str, dict[str, Any]]:
    """Write documents and task files for `tasks`; {task: {"docs", "skipped"}}. Skipped
    samples (with their reasons) go to `<out>/skipped.jsonl`."""
    prepared: dict[str, dict[str, Any]] = {}
    skipped: list[dict[str, Any]] = []
    for task in tasks:
        loaded = read_task(task, task_source(task, data, run_dir), fold)
        for row in loaded.skipped:
            log.warning(
                "%s: skipped %s: %s (%s)", task, row["source"], row["reason"], row["detail"]
            )
        skipped += [{"task": task, **row} for row in loaded.skipped]
        prepared[task] = {"docs": len(loaded.docs), "skipped": len(loaded.skipped)}
        if not loaded.docs:
            log.warning("%s: no sample to evaluate", task)
            continue
        docs = out / "docs" / f"{task}.jsonl"
        write_jsonl(docs, loaded.docs)
        # The documents' digest in the task's config: lmms-eval's response cache keys on the
        # config and the document's number, so another fold or dataset is answered anew.
        digest = hashlib.sha256(docs.read_bytes()).hexdigest()[:16]
        spec = {
            "include": str(TASKS_DIR / f"{task}.yaml"),
            "task": task,
            "dataset_kwargs": {"data_files": {"test": str(docs.resolve())}},
            "metadata": {"version": 1.0, "documents": digest},
        }
        (out / "tasks").mkdir(parents=True, exist_ok=True)
        (out / "tasks" / f"{task}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    write_jsonl(out / "skipped.jsonl", skipped)
    return prepared


def write_shipped_docs() -> None:
    """Regenerate `model/eval/tasks/docs/` from the shipped sets (what lmms-eval's own CLI
    reads with `--include_path model/eval/tasks`)."""
    for task in DATA_TASKS:
        loaded = read_task(task, SETS_DIR / task)
        write_jsonl(TASKS_DIR / "docs" / f"{task}.jsonl", relative_docs(loaded.docs))


if __name__ == "__main__":
    write_shipped_docs()
