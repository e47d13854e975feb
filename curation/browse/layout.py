"""Where a run's Parquet lives, read as finished shards only.

Writers put a shard under a dot-name and rename it when complete (curation/rundir.py), so a
folder's `*.parquet` files that do not start with a dot are always finished shards: skipping
dot-files is all it takes to read a run that is still going. A stage folder with no finished
shard yet counts as absent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.rundir import RunDir

# (stage, folder) in the default pipeline order; run.json says the order a run really used.
DEFAULT_STAGES: list[tuple[str, str]] = [
    ("probe", "sources"),
    ("scenes", "scenes"),
    ("temporal", "temporal"),
    ("cut", "clips"),
    ("boxes", "boxes"),
    ("brief_caption", "captions"),
    ("dedup", "dedup"),
    ("detailed_caption", "detailed"),
    ("consensus", "consensus"),
    ("structure", "structured"),
]
INPUTS = "inputs"
INSTRUCTIONS = "instructions"


class BrowseError(RuntimeError):
    """A run cannot be read as asked (no such run, a bad query, an unknown clip)."""


@dataclass(frozen=True)
class Folder:
    stage: str  # the stage that writes it, e.g. "cut"; "instructions/face" for pair folders
    name: str  # path under the run, e.g. "clips", "instructions/face"
    shards: tuple[Path, ...]  # finished shards, sorted by name

    @property
    def view(self) -> str:
        """Its SQL view name: the folder name with "/" turned into "_"."""
        return self.name.replace("/", "_")

    @property
    def exists(self) -> bool:
        return bool(self.shards)


@dataclass
class RunLayout:
    """A snapshot of a run directory's finished shards, taken once when it is opened."""

    path: Path
    state: dict[str, Any] = field(default_factory=dict)  # run.json, {} when not written yet
    inputs: Folder | None = None
    stages: list[Folder] = field(default_factory=list)  # pipeline order, existing or not
    branches: list[Folder] = field(default_factory=list)  # instructions/<branch> with shards

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def total_shards(self) -> int | None:
        """How many input shards the run has: every stage is done when it has this many."""
        known = (self.state.get("inputs") or {}).get("shards")
        if known is not None:
            return int(known)
        return len(self.inputs.shards) if self.inputs and self.inputs.exists else None

    def folder(self, name: str) -> Folder | None:
        for f in [*self.stages, *self.branches]:
            if f.name == name:
                return f
        return None


def finished_shards(folder: Path) -> tuple[Path, ...]:
    if not folder.is_dir():
        return ()
    # pathlib's "*" also matches dot-files: temporaries must be skipped by hand.
    return tuple(
        sorted(
            p
            for p in folder.iterdir()
            if p.suffix == ".parquet" and not p.name.startswith(".") and p.is_file()
        )
    )


def resolve_run(run: str, root: str | Path = "data_manifests") -> Path:
    """A run name under `root`, or a path to a run directory (anything with a slash)."""
    path = Path(run).resolve() if "/" in run or run in (".", "..") else RunDir(root, run).path
    looks_like_run = (path / "run.json").is_file() or any(
        (path / folder).is_dir() for folder in (INPUTS, *(f for _, f in DEFAULT_STAGES))
    )
    if not looks_like_run:
        raise BrowseError(
            f"no run at {path} (no run.json, no stage folders): curate it first with "
            f"`make curate RUN={path.name}`, or point --root at the folder that holds it"
        )
    return path


def stage_order(state: dict[str, Any]) -> list[tuple[str, str]]:
    """(stage, folder) pairs in the order this run used, from run.json when it says."""
    recorded = state.get("stages") or {}
    if recorded:
        return [(name, s.get("folder", name)) for name, s in recorded.items()]
    default = dict(DEFAULT_STAGES)
    configured = (state.get("config") or {}).get("stages")
    if configured:
        return [(name, default.get(name, name)) for name in configured]
    return list(DEFAULT_STAGES)


def open_layout(path: Path) -> RunLayout:
    state: dict[str, Any] = {}
    run_json = path / "run.json"
    if run_json.is_file():
        try:
            state = json.loads(run_json.read_text())
        except (OSError, ValueError) as exc:
            raise BrowseError(f"{run_json} is unreadable: {exc}") from None
    stages = [Folder(s, f, finished_shards(path / f)) for s, f in stage_order(state)]
    pairs = path / INSTRUCTIONS
    branches = []
    if pairs.is_dir():
        for sub in sorted(p for p in pairs.iterdir() if p.is_dir() and not p.name.startswith(".")):
            shards = finished_shards(sub)
            if shards:
                branches.append(
                    Folder(f"{INSTRUCTIONS}/{sub.name}", f"{INSTRUCTIONS}/{sub.name}", shards)
                )
    inputs = Folder(INPUTS, INPUTS, finished_shards(path / INPUTS))
    return RunLayout(path=path, state=state, inputs=inputs, stages=stages, branches=branches)
