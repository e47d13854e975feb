"""Where a run lives: a local folder or an object store (s3://bucket/prefix, gs://...).

Everything the pipeline writes goes through one `Storage` (pyarrow's filesystems), so the
same code runs on a laptop and on a cloud cluster whose nodes share a bucket, not a disk.
Paths inside a storage are relative ("scenes/part-00003.parquet"); `uri()` gives the form
users and manifests see: an absolute path for a folder, `s3://bucket/...` for a bucket.

Files appear whole or not at all. A local file is written under a dot-name and renamed; an
object store makes an object visible only when its upload completes, so a killed writer
leaves nothing readable behind. S3 credentials and endpoints come from the usual AWS
variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL for an
S3-compatible server).

Media tools (ffmpeg) read local files and http(s) URLs only: `local_copy()` downloads an
object-store file to a temporary file for as long as it is needed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

# Schemes ffmpeg reads itself; every other scheme is a filesystem pyarrow knows.
STREAMABLE = ("http://", "https://")


def is_uri(location: str | Path) -> bool:
    return "://" in str(location)


def is_object_store(location: str | Path) -> bool:
    text = str(location)
    return is_uri(text) and not text.startswith(("file://", *STREAMABLE))


@dataclass(frozen=True)
class Storage:
    fs: pafs.FileSystem
    base: str  # the root's path inside `fs`
    root_uri: str  # how the root is named to users: an absolute path or scheme://...

    @classmethod
    def open(cls, root: str | Path) -> Storage:
        text = str(root)
        if not is_object_store(text):
            path = Path(text.removeprefix("file://")).expanduser().resolve()
            return cls(pafs.LocalFileSystem(), str(path), str(path))
        fs, base = _filesystem(text)
        return cls(fs, base.rstrip("/"), text.rstrip("/"))

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def child(self, name: str) -> Storage:
        """The storage of a sub-folder (a run under the root of runs)."""
        return Storage(self.fs, self.fs_path(name), f"{self.root_uri}/{name}")

    # --- names --------------------------------------------------------------------------------
    def fs_path(self, rel: str) -> str:
        """The path of `rel` inside `fs` (for pyarrow readers given this storage's fs)."""
        return f"{self.base}/{rel}" if rel else self.base

    def uri(self, rel: str = "") -> str:
        return f"{self.root_uri}/{rel}" if rel else self.root_uri

    def local_path(self, rel: str = "") -> Path:
        """The file's path on this machine (local storage only)."""
        if not self.is_local:
            raise StorageError(f"{self.uri(rel)} is in an object store, not a local folder")
        return Path(self.fs_path(rel))

    # --- reading ------------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        return self.fs.get_file_info(self.fs_path(rel)).type != pafs.FileType.NotFound

    def files(self, folder: str, suffix: str = "") -> list[str]:
        """Names of the finished files directly in `folder` (dot-files are temporaries)."""
        selector = pafs.FileSelector(self.fs_path(folder), allow_not_found=True)
        return sorted(
            info.base_name
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File
            and not info.base_name.startswith(".")
            and info.base_name.endswith(suffix)
        )

    def walk(self, folder: str = "") -> list[str]:
        """Every file under `folder`, recursively, as full URIs (or absolute paths)."""
        selector = pafs.FileSelector(self.fs_path(folder), recursive=True, allow_not_found=True)
        base = self.fs_path("")
        return sorted(
            self.uri(info.path[len(base) :].lstrip("/"))
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File
        )

    def kind(self, rel: str = "") -> str:
        """'file', 'folder' or 'missing'."""
        info = self.fs.get_file_info(self.fs_path(rel))
        return {pafs.FileType.File: "file", pafs.FileType.Directory: "folder"}.get(
            info.type, "missing"
        )

    def size(self, rel: str = "") -> int:
        return int(self.fs.get_file_info(self.fs_path(rel)).size or 0)

    def folders(self, folder: str) -> list[str]:
        selector = pafs.FileSelector(self.fs_path(folder), allow_not_found=True)
        return sorted(
            info.base_name
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.Directory and not info.base_name.startswith(".")
        )

    def read_bytes(self, rel: str) -> bytes:
        with self.fs.open_input_stream(self.fs_path(rel)) as fh:
            return fh.read()

    def read_table(self, rel: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.fs_path(rel), columns=columns, filesystem=self.fs)

    def read_present(self, rel: str, columns: list[str]) -> pa.Table:
        """Those of `columns` the file has, in one open (its footer read once)."""
        with self.fs.open_input_file(self.fs_path(rel)) as fh:
            parquet = pq.ParquetFile(fh)
            names = set(parquet.schema_arrow.names)
            return parquet.read(columns=[c for c in columns if c in names])

    def read_schema(self, rel: str) -> pa.Schema:
        return pq.read_schema(self.fs_path(rel), filesystem=self.fs)

    # --- writing ------------------------------------------------------------------------------
    def write_bytes(self, rel: str, data: bytes) -> None:
        if self.is_local:
            atomic_local_write(Path(self.fs_path(rel)), lambda tmp: tmp.write_bytes(data))
            return
        with self.fs.open_output_stream(self.fs_path(rel)) as fh:
            fh.write(data)

    def write_table(self, rel: str, table: pa.Table) -> None:
        options = {"compression": "zstd", "use_dictionary": dictionary_columns(table.schema)}
        if self.is_local:
            atomic_local_write(
                Path(self.fs_path(rel)), lambda tmp: pq.write_table(table, tmp, **options)
            )
            return
        pq.write_table(table, self.fs_path(rel), filesystem=self.fs, **options)

    @contextlib.contextmanager
    def open_output(self, rel: str) -> Iterator[BinaryIO]:
        """A file to write in pieces; it appears (whole) only when the block ends cleanly.
        It is written to a local file first (beside its place, or in a temporary folder for
        an object store) and renamed or uploaded at the end."""
        if self.is_local:
            final = Path(self.fs_path(rel))
            final.parent.mkdir(parents=True, exist_ok=True)
            folder = contextlib.nullcontext(str(final.parent))
        else:
            folder = tempfile.TemporaryDirectory(prefix="curation-out-")
        with folder as where:
            tmp = Path(where) / f".{Path(rel).name}.{os.getpid()}.tmp"
            try:
                with open(tmp, "wb") as fh:
                    yield fh
                    fh.flush()
                    os.fsync(fh.fileno())
                self.upload(tmp, rel)
            finally:
                tmp.unlink(missing_ok=True)

    def upload(self, local: Path, rel: str) -> None:
        """Move a finished local file in (a rename when the storage is local too)."""
        if self.is_local:
            target = Path(self.fs_path(rel))
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(local, target)
            return
        with open(local, "rb") as src, self.fs.open_output_stream(self.fs_path(rel)) as dst:
            shutil.copyfileobj(src, dst, 8 << 20)
        Path(local).unlink(missing_ok=True)

    def delete(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self.fs_path(rel))

    def delete_folder(self, rel: str) -> None:
        """Remove a folder's contents (one batched call on an object store)."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_dir_contents(self.fs_path(rel), missing_dir_ok=True)


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """Columns worth dictionary encoding: all but lists of floats (embeddings), whose values
    never repeat, so trying a dictionary makes them several times slower to read."""
    return [
        f.name
        for f in schema
        if not (pa.types.is_list(f.type) and pa.types.is_floating(f.type.value_type))
    ]


class StorageError(RuntimeError):
    """A run root cannot be opened or used as asked."""


@functools.lru_cache(maxsize=64)
def _bucket_filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    try:
        return pafs.FileSystem.from_uri(root)
    except (pa.ArrowInvalid, OSError) as exc:
        raise StorageError(f"cannot open {root}: {exc}") from None


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem of an object-store URI and the path in it. The filesystem is opened
    for the bucket alone (once per process), so keys may hold any character, spaces too."""
    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    fs, base = _bucket_filesystem(f"{scheme}://{bucket}")
    return fs, f"{base.rstrip('/')}/{key}" if key else base


def atomic_local_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def local_copy(location: str) -> Iterator[str]:
    """A path or URL ffmpeg can open for `location`; object-store files are downloaded to a
    temporary file that is removed afterwards."""
    if not is_object_store(location):
        yield location.removeprefix("file://")
        return
    fs, path = _filesystem(location)
    suffix = Path(path).suffix
    with tempfile.TemporaryDirectory(prefix="curation-media-") as tmp:
        local = Path(tmp) / f"media{suffix}"
        with fs.open_input_stream(path) as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, 8 << 20)
        yield str(local)
