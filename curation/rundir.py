"""The run directory: data_manifests/<run>/ with run.json, one Parquet folder per stage, media/.

Every file appears complete or not at all (written under a temporary name, then renamed), so a
run killed at any point leaves only finished shards behind and a re-run picks up from there.
One process at a time may write a run directory: `RunDir.lock()` holds an exclusive lock that
the operating system drops when the holder dies, even on kill -9.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curation.config import ConfigError

STATS_KEY = b"curation.stats"


class RunLockedError(RuntimeError):
    """Another process is writing the same run directory."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_table(path: Path, table: pa.Table, stats: dict[str, Any] | None = None) -> None:
    """Write one Parquet file atomically; `stats` travel in the file's metadata."""
    if stats is not None:
        meta = dict(table.schema.metadata or {})
        meta[STATS_KEY] = json.dumps(stats, sort_keys=True).encode()
        table = table.replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_stats(path: Path) -> dict[str, Any]:
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[STATS_KEY]) if STATS_KEY in meta else {}


class RunDir:
    def __init__(self, root: str | Path, name: str):
        if not name or "/" in name or name in (".", ".."):
            raise ConfigError(f"run name {name!r} must be a plain folder name")
        self.name = name
        self.path = Path(root).resolve() / name

    # --- layout -------------------------------------------------------------------------------
    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def media(self) -> Path:
        return self.path / "media"

    def folder(self, name: str) -> Path:
        return self.path / name

    def shard_path(self, folder: str, index: int) -> Path:
        return self.path / folder / f"part-{index:05d}.parquet"

    def finished_shards(self, folder: str) -> set[int]:
        d = self.folder(folder)
        if not d.is_dir():
            return set()
        return {int(p.stem.split("-")[1]) for p in d.glob("part-*.parquet")}

    def read_folder(self, folder: str) -> pa.Table:
        """All finished shards of a folder, in shard order."""
        files = sorted(self.folder(folder).glob("part-*.parquet"))
        if not files:
            raise FileNotFoundError(f"{self.folder(folder)} has no finished shards")
        return pa.concat_tables([pq.read_table(f) for f in files])

    # --- run.json -----------------------------------------------------------------------------
    def read_run_json(self) -> dict[str, Any] | None:
        if not self.run_json.exists():
            return None
        return json.loads(self.run_json.read_text())

    def write_run_json(self, data: dict[str, Any]) -> None:
        data = {**data, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write_bytes(self.run_json, json.dumps(data, indent=2, sort_keys=False).encode())

    # --- housekeeping -------------------------------------------------------------------------
    def remove_stale_temporaries(self) -> int:
        """Delete half-written files left by a killed run (only ever called under the lock)."""
        removed = 0
        if not self.path.exists():
            return 0
        for tmp in self.path.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)
            removed += 1
        for tmp in self.media.rglob("*.partial.*") if self.media.exists() else []:
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        lock_path = self.path / ".lock"
        fh = open(lock_path, "a+")  # noqa: SIM115 - held open for the whole run, closed below
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "unknown process"
                raise RunLockedError(
                    f"run directory {self.path} is being written by another run ({holder}); "
                    "wait for it to finish or choose another RUN name"
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.ctime()}\n")
            fh.flush()
            yield
        finally:
            fh.close()
