"""probe: one ffprobe per source; sources whose displayed short side is too small stop here.

Nothing is decoded (a source in an object store is fetched to a temporary file for
ffprobe, which reads local files and http(s) URLs only). Displayed size applies the sample aspect ratio and the rotation, so a
1080x1920 phone video recorded as rotated 1920x1080 is judged on its 1080-pixel side.
"""

from __future__ import annotations

import errno
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field

from curation.core import faults, schemas
from curation.core.config import Resources, Section
from curation.media.ffmpeg import ProbeError, parse_probe, run_ffprobe
from curation.storage import STREAMABLE, Storage, local_copy
from stages.base import Stage, kept, rejected


class ProbeConfig(Section):
    """The `probe:` section: the resolution rule and ffprobe's limits."""

    min_short_side: int = Field(
        480, ge=1, description="displayed short side below this is rejected"
    )
    timeout_s: float = Field(60.0, gt=0)
    threads: int = Field(8, ge=1, description="ffprobe calls in flight per worker")
    resources: Resources = Resources(cpus=0.5, concurrency=8)


@dataclass(kw_only=True)
class ProbeStage(Stage):
    name: ClassVar[str] = "probe"
    output_folder: ClassVar[str] = "sources"
    order: ClassVar[float | None] = 10
    schema: ClassVar[pa.Schema] = schemas.SOURCES
    reads: ClassVar[tuple[str, ...]] = ("source_id", "path")

    cfg: ProbeConfig

    def process(self, batch: pa.Table) -> pa.Table:
        # ffprobe mostly waits (process start, file system): several at once per worker.
        return self.table(self.map_rows(self.probe_one, batch.to_pylist(), self.cfg.threads))

    def probe_one(self, row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"source_id": row["source_id"], "path": row["path"]}
        path = row["path"]
        if not path.startswith(STREAMABLE):  # a file, here or in an object store
            store, name = (Storage.open(path.rsplit("/", 1)[0]), path.rsplit("/", 1)[1])
            kind = store.kind(name)
            if kind == "missing":
                if store.is_local and store.kind() == "missing":  # its whole folder is gone
                    faults.check(OSError(errno.ENOENT, "no such folder", store.uri()), path)
                return {**out, **rejected("missing_file", f"no such file: {path}")}
            if kind != "file":
                return {**out, **rejected("not_a_file", f"not a regular file: {path}")}
            out["file_size_bytes"] = store.size(name)
            if out["file_size_bytes"] == 0:
                return {**out, **rejected("empty_file", "the file is empty (0 bytes)")}
        try:
            with local_copy(path) as local:
                info = parse_probe(run_ffprobe(local, self.cfg.timeout_s))
        except ProbeError as exc:
            return {**out, **rejected("unreadable", f"ffprobe: {exc}")}
        if info is None:
            return {**out, **rejected("no_video_stream", "the file has no video stream")}
        out.update(asdict(info))
        if not info.fps or info.fps <= 0:
            return {**out, **rejected("no_frame_rate", "the video stream reports no frame rate")}
        short = min(info.display_width, info.display_height)
        if short < self.cfg.min_short_side:
            return {
                **out,
                **rejected(
                    "low_resolution",
                    f"displayed {info.display_width}x{info.display_height}: short side {short} "
                    f"< {self.cfg.min_short_side}",
                ),
            }
        return {**out, **kept()}
