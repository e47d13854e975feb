"""Turn the `--sources` argument into the run's input list: one row per source video.

Accepted: a folder (searched recursively for video extensions), a text file with one path per
line (`#` starts a comment), a CSV file with a path column, or a Parquet file with a path
column; a folder or list file may be in an object store (s3://bucket/videos/), and list
entries may be URIs. Relative paths in list files are relative to the list file. Paths that do not exist are
kept: the probe stage records them as `missing_file` rather than losing them here.
"""

from __future__ import annotations

import csv
import logging
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curation.core.ids import source_id
from curation.core.schemas import INPUTS
from curation.engine.config import SourcesConfig
from curation.storage import Storage, StorageError, is_object_store

log = logging.getLogger(__name__)


class SourcesError(ValueError):
    pass


def _from_folder(folder: Path, extensions: list[str]) -> list[str]:
    wanted = {e.lower() for e in extensions}
    return sorted(str(p) for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in wanted)


def _from_text(path: Path) -> list[str]:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _from_csv(path: Path, column: str) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or column not in reader.fieldnames:
            raise SourcesError(f"{path}: no column {column!r} (columns: {reader.fieldnames})")
        return [row[column].strip() for row in reader if (row[column] or "").strip()]


def _from_parquet(path: Path, column: str) -> list[str]:
    schema = pq.read_schema(path)
    if column not in schema.names:
        raise SourcesError(f"{path}: no column {column!r} (columns: {schema.names})")
    values = pq.read_table(path, columns=[column]).column(column).to_pylist()
    return [str(v) for v in values if v]


def _absolute(entry: str, base: Path) -> str:
    if "://" in entry:
        return entry
    p = Path(entry).expanduser()
    return str(p if p.is_absolute() else (base / p).absolute())


def _from_object_store(spec: str, config: SourcesConfig) -> list[str]:
    """A prefix of an object store (every video under it) or a list file stored there."""
    wanted = {e.lower() for e in config.extensions}
    parent, _, name = spec.rstrip("/").rpartition("/")
    try:
        folder = Storage.open(spec)
        if folder.kind() == "folder":
            return [u for u in folder.walk() if Path(u).suffix.lower() in wanted]
        store = Storage.open(parent)
        if store.kind(name) != "file":
            raise SourcesError(f"sources {spec!r} is neither a folder nor a file")
        if Path(name).suffix.lower() in wanted:
            return [spec]
        with tempfile.TemporaryDirectory() as tmp:  # a list file: read as a local one
            local = Path(tmp) / name
            local.write_bytes(store.read_bytes(name))
            entries = _from_list_file(local, config)
    except (OSError, StorageError) as exc:
        raise SourcesError(f"sources {spec!r}: {exc}") from None
    return [e if "://" in e else f"{parent}/{e}" for e in entries]


def _from_list_file(spec: Path, config: SourcesConfig) -> list[str]:
    suffix = spec.suffix.lower()
    if suffix == ".parquet":
        return _from_parquet(spec, config.path_column)
    if suffix == ".csv":
        return _from_csv(spec, config.path_column)
    return _from_text(spec)


def list_sources(spec: str | Path, config: SourcesConfig) -> pa.Table:
    """Resolve a sources argument into a table of `source_id`, `path` (absolute, or a URI)."""
    if is_object_store(spec):
        return _table(_from_object_store(str(spec), config), str(spec))
    spec = Path(spec).expanduser()
    if spec.is_dir():
        paths = _from_folder(spec.absolute(), config.extensions)
    elif spec.is_file():
        if spec.suffix.lower() in {e.lower() for e in config.extensions}:
            entries = [str(spec)]
        else:
            entries = _from_list_file(spec, config)
        paths = [_absolute(e, spec.parent.absolute()) for e in entries]
    else:
        raise SourcesError(f"sources {str(spec)!r} is neither a folder nor a file")
    return _table(paths, str(spec))


def _table(paths: list[str], spec: str) -> pa.Table:
    seen: set[str] = set()
    unique = []
    for p in paths:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    if len(unique) < len(paths):
        log.warning("sources: %d repeated paths listed once", len(paths) - len(unique))
    if not unique:
        raise SourcesError(f"sources {str(spec)!r} lists no videos")
    return pa.table({"source_id": [source_id(p) for p in unique], "path": unique}, schema=INPUTS)
