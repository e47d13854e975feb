"""The run directory: <root>/<run>/ with run.json, one Parquet folder per stage, media/.

The root is a folder or an object-store URI (curation/storage.py). Every file appears complete
or not at all, so a run killed at any point leaves only finished shards behind and a re-run
picks up from there. A shard's statistics (rows in and out, kept, rejected by reason,
seconds, where it ran) travel in its Parquet footer, written in the same file as its rows.

One process at a time may write a run. On a local disk `RunDir.lock()` holds an exclusive
lock that the operating system drops when the holder dies, even on kill -9. On an object
store it holds a lease object that the holder renews; a lease left by a dead process on the
same host is taken over at once, one from another host once it expires. (Object stores have
no atomic create here, so two drivers starting in the same second could both win the lease:
the lease protects against mistakes, not races.)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curation.core.config import ConfigError
from curation.core.units import Unit, file_name, unit_of
from curation.storage import Storage, atomic_local_write

STATS_KEY = b"curation.stats"
LEASE_S = 120.0  # an object-store lease not renewed for this long is abandoned


class RunLockedError(RuntimeError):
    """Another process is writing the same run directory."""


def with_stats(table: pa.Table, stats: dict[str, Any] | None) -> pa.Table:
    """The table with `stats` in its schema metadata (they end up in the Parquet footer)."""
    if stats is None:
        return table
    meta = dict(table.schema.metadata or {})
    meta[STATS_KEY] = json.dumps(stats, sort_keys=True).encode()
    return table.replace_schema_metadata(meta)


def stats_of(schema: pa.Schema) -> dict[str, Any]:
    meta = schema.metadata or {}
    return json.loads(meta[STATS_KEY]) if STATS_KEY in meta else {}


def write_table(path: Path, table: pa.Table, stats: dict[str, Any] | None = None) -> None:
    """Write one local Parquet file atomically; `stats` travel in the file's metadata."""
    table = with_stats(table, stats)
    atomic_local_write(Path(path), lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_local_write(Path(path), lambda tmp: tmp.write_bytes(data))


class RunDir:
    def __init__(self, root: str | Path, name: str):
        if not name or "/" in name or name in (".", ".."):
            raise ConfigError(f"run name {name!r} must be a plain folder name")
        self.name = name
        self.storage = Storage.open(root).child(name)

    # --- layout -------------------------------------------------------------------------------
    @property
    def location(self) -> str:
        """The run as users name it: an absolute path, or the object-store URI."""
        return self.storage.uri()

    @property
    def path(self) -> Path:
        """The run's local folder (a run on an object store has none)."""
        return self.storage.local_path()

    def uri(self, rel: str) -> str:
        return self.storage.uri(rel)

    def shard_file(self, folder: str, unit: Unit) -> str:
        return f"{folder}/{file_name(unit)}"

    def units(self, folder: str) -> set[Unit]:
        """The shards a folder has finished."""
        return {u for f in self.storage.files(folder, ".parquet") if (u := unit_of(f))}

    def has(self, folder: str, unit: Unit) -> bool:
        return self.storage.exists(self.shard_file(folder, unit))

    def read_unit(self, folder: str, unit: Unit, columns: list[str] | None = None) -> pa.Table:
        return self.storage.read_table(self.shard_file(folder, unit), columns)

    def write_unit(self, folder: str, unit: Unit, table: pa.Table, stats: dict[str, Any]) -> None:
        self.storage.write_table(self.shard_file(folder, unit), with_stats(table, stats))

    def unit_stats(self, folder: str, unit: Unit) -> dict[str, Any]:
        return stats_of(self.storage.read_schema(self.shard_file(folder, unit)))

    def delete_unit(self, folder: str, unit: Unit) -> None:
        self.storage.delete(self.shard_file(folder, unit))

    def read_folder(self, folder: str) -> pa.Table:
        """All finished shards of a folder, in shard order."""
        units = sorted(self.units(folder))
        if not units:
            raise FileNotFoundError(f"{self.uri(folder)} has no finished shards")
        return pa.concat_tables([self.read_unit(folder, u) for u in units])

    # --- run.json -----------------------------------------------------------------------------
    def read_run_json(self) -> dict[str, Any] | None:
        if not self.storage.exists("run.json"):
            return None
        return json.loads(self.storage.read_bytes("run.json"))

    def write_run_json(self, data: dict[str, Any]) -> None:
        data = {**data, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self.storage.write_bytes("run.json", json.dumps(data, indent=2, sort_keys=False).encode())

    # --- housekeeping -------------------------------------------------------------------------
    def remove_stale_temporaries(self) -> int:
        """Delete half-written files left by a killed run (only ever called under the lock).
        Object stores never show a half-written object, so only local runs have any."""
        if not self.storage.is_local or not self.path.exists():
            return 0
        removed = 0
        for tmp in [*self.path.rglob(".*.tmp"), *self.path.glob("media/**/*.partial.*")]:
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        holder = f"pid {os.getpid()} on {socket.gethostname()} since {time.ctime()}"
        if self.storage.is_local:
            with _file_lock(self.path, holder):
                yield
        else:
            with _lease(self.storage, holder):
                yield


@contextlib.contextmanager
def _file_lock(folder: Path, holder: str) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    fh = open(folder / ".lock", "a+")  # noqa: SIM115 - held open for the whole run, closed below
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise _locked(folder, fh.read().strip() or "unknown process") from None
        fh.seek(0)
        fh.truncate()
        fh.write(holder + "\n")
        fh.flush()
        yield
    finally:
        fh.close()


def _locked(where: Any, holder: str) -> RunLockedError:
    return RunLockedError(
        f"run directory {where} is being written by another run ({holder}); "
        "wait for it to finish or choose another RUN name"
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _lease(storage: Storage, holder: str) -> Iterator[None]:
    host, pid = socket.gethostname(), os.getpid()
    if storage.exists(".lock"):
        lease = json.loads(storage.read_bytes(".lock"))
        dead_here = lease.get("host") == host and not _pid_alive(int(lease.get("pid", 0)))
        if lease.get("expires", 0) > time.time() and not dead_here:
            raise _locked(storage.uri(), lease.get("holder", "unknown process"))

    def renew() -> None:
        lease = {"holder": holder, "host": host, "pid": pid, "expires": time.time() + LEASE_S}
        storage.write_bytes(".lock", json.dumps(lease).encode())

    renew()
    stop = threading.Event()

    def keep_alive() -> None:
        while not stop.wait(LEASE_S / 4):
            renew()

    thread = threading.Thread(target=keep_alive, name="run-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        storage.delete(".lock")
