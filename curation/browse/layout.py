"""Where a run's Parquet lives, read as finished shards only, in a folder or an object store.

Writers put a shard under a dot-name and rename it when complete (curation/rundir.py; an
object store shows an object only once it is whole), so a folder's `*.parquet` files that do
not start with a dot are always finished shards: skipping dot-files is all it takes to read a
run that is still going. A stage folder with no finished shard yet counts as absent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from curation.rundir import RunDir
from curation.storage import Storage, is_uri

INPUTS = "inputs"
INSTRUCTIONS = "instructions"


class BrowseError(RuntimeError):
    """A run cannot be read as asked (no such run, a bad query, an unknown clip)."""


@dataclass(frozen=True)
class Folder:
    stage: str  # the stage that writes it, e.g. "cut"; "instructions/face" for pair folders
    name: str  # path under the run, e.g. "clips", "instructions/face"
    shards: tuple[PurePosixPath, ...]  # finished shards, relative to the run, sorted by name

    @property
    def view(self) -> str:
        """Its SQL view name: the folder name with "/" turned into "_"."""
        return self.name.replace("/", "_")

    @property
    def exists(self) -> bool:
        return bool(self.shards)


@dataclass
class RunLayout:
    """A snapshot of a run's finished shards, taken once when it is opened."""

    storage: Storage  # the run: a local folder or a prefix in an object store
    state: dict[str, Any] = field(default_factory=dict)  # run.json, {} when not written yet
    inputs: Folder | None = None
    stages: list[Folder] = field(default_factory=list)  # pipeline order, existing or not
    branches: list[Folder] = field(default_factory=list)  # instructions/<branch> with shards

    @property
    def path(self) -> str:
        """The run as users name it: an absolute path or an object-store URI."""
        return self.storage.uri()

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def total_shards(self) -> int | None:
        """How many input shards the run has (the source list is complete with this many)."""
        known = (self.state.get("inputs") or {}).get("shards")
        if known is not None:
            return int(known)
        return len(self.inputs.shards) if self.inputs and self.inputs.exists else None

    def folder(self, name: str) -> Folder | None:
        for f in [*self.stages, *self.branches]:
            if f.name == name:
                return f
        return None


def finished_shards(storage: Storage, folder: str) -> tuple[PurePosixPath, ...]:
    # Dot-files are temporaries of a writer still at work: Storage.files skips them.
    return tuple(PurePosixPath(folder) / f for f in storage.files(folder, ".parquet"))


def resolve_run(run: str, root: str | Path = "data_manifests") -> Storage:
    """A run name under `root` (a folder or an object-store URI), or the run itself given as
    a path (anything with a slash) or URI."""
    if is_uri(run):
        storage = Storage.open(run)
    elif "/" in run or run in (".", ".."):
        storage = Storage.open(Path(run).resolve())
    else:
        storage = RunDir(root, run).storage
    # The pipeline writes run.json before any stage folder (and the source list only with it).
    if not (storage.exists("run.json") or storage.exists(INPUTS)):
        name = storage.uri().rstrip("/").rsplit("/", 1)[-1]
        raise BrowseError(
            f"no run at {storage.uri()} (no run.json, no stage folders): curate it first with "
            f"`make curate RUN={name}`, or point --root at the folder that holds it"
        )
    return storage


def stage_order(
    state: dict[str, Any], default: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    """(stage, folder) pairs in the order this run used, as its run.json records them (the
    pipeline records every configured stage and its folder when the run starts); `default`
    (the pipeline's stage table, given by the caller) for a run copied without its run.json."""
    recorded = state.get("stages") or {}
    if recorded:
        return [(name, s.get("folder", name)) for name, s in recorded.items()]
    return list(default)


def open_layout(
    run: Storage | str | Path, default_stages: Sequence[tuple[str, str]] = ()
) -> RunLayout:
    """A snapshot of a run, given as its storage, path or URI; `default_stages`: (stage,
    folder) in the default order, for a run whose run.json does not list its stages."""
    storage = run if isinstance(run, Storage) else Storage.open(run)
    state: dict[str, Any] = {}
    if storage.exists("run.json"):
        try:
            state = json.loads(storage.read_bytes("run.json"))
        except (OSError, ValueError) as exc:
            raise BrowseError(f"{storage.uri('run.json')} is unreadable: {exc}") from None
    stages = [
        Folder(s, f, finished_shards(storage, f)) for s, f in stage_order(state, default_stages)
    ]
    branches = []
    for sub in storage.folders(INSTRUCTIONS):
        name = f"{INSTRUCTIONS}/{sub}"
        shards = finished_shards(storage, name)
        if shards:
            branches.append(Folder(name, name, shards))
    inputs = Folder(INPUTS, INPUTS, finished_shards(storage, INPUTS))
    return RunLayout(storage=storage, state=state, inputs=inputs, stages=stages, branches=branches)
