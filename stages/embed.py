"""embed: the brief caption of each clip as a unit-length vector, stored with its shard.

Dedup (stages/dedup.py) reads these vectors shard by shard instead of holding every caption
and embedding them all in one process, and a resumed run reuses them. The embedder is a
sentence-transformers model (`embed.model`), on the worker's GPU when it has one; vectors
are stored at `embed.dtype` (float16 by default: 768 bytes for MiniLM's 384 dimensions, 7.7 GB
for 10M clips). A clip without a caption gets no vector and is never judged a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from curation.backends.base import check_model_available
from curation.core import schemas
from curation.core.config import Resources, Section
from curation.core.worker import GpuNeed, Worker
from curation.embed import CaptionEmbedder, resolve_model
from stages.base import Stage

EMBEDDING = "caption_embedding"


class EmbedConfig(Section):
    """Caption embeddings for dedup (stages/embed.py), stored with each shard's manifest."""

    model: str = Field(
        "bundled:all-MiniLM-L6-v2", description="sentence-transformers model name or local path"
    )
    batch_size: int = Field(256, ge=1, description="captions a model call")
    device: str | None = Field(None, description="None: the GPU the worker was given, else CPU")
    dtype: Literal["float16", "float32"] = Field(
        "float16", description="stored precision (float16: 768 bytes a 384-d vector)"
    )
    resources: Resources = Resources(cpus=1, gpus="auto", concurrency=2)


def embedding_field(dtype: str) -> pa.Field:
    return pa.field(EMBEDDING, pa.list_(pa.from_numpy_dtype(np.dtype(dtype))))


def embedding_array(vectors: np.ndarray, present: np.ndarray, dtype: str) -> pa.Array:
    """One list per row: the next vector where `present`, null elsewhere."""
    values = pa.array(np.ascontiguousarray(vectors, dtype=dtype).reshape(-1))
    offsets = np.zeros(len(present) + 1, np.int32)
    offsets[1:] = np.cumsum(present.astype(np.int32) * vectors.shape[1])
    mask = pa.array(~present)
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=mask)


def read_embeddings(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(float32 vectors of the rows that have one, bool mask of those rows)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    present = ~np.asarray(array.is_null().to_numpy(zero_copy_only=False), bool)
    values = array.filter(pa.array(present)).flatten().to_numpy(zero_copy_only=False)
    rows = int(present.sum())
    dim = len(values) // rows if rows else 0
    return values.astype(np.float32).reshape(rows, dim), present


@dataclass(kw_only=True)
class EmbedStage(Stage):
    name: ClassVar[str] = "embed"
    output_folder: ClassVar[str] = "embeddings"
    order: ClassVar[float | None] = 90
    schema: ClassVar[pa.Schema] = schemas.EMBEDDINGS
    adds: ClassVar[list[pa.Field]] = schemas.EMBED_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "brief_caption")
    uses_actor: ClassVar[bool] = True

    cfg: EmbedConfig
    _embedder: CaptionEmbedder | None = field(default=None, init=False, repr=False)

    def bind(self, previous: pa.Schema) -> None:
        adds = [embedding_field(self.cfg.dtype), *schemas.EMBED_COLUMNS[1:]]
        self.schema = schemas.extend(previous, adds)  # type: ignore[misc]

    def gpu_need(self) -> GpuNeed:
        return GpuNeed.for_device(self.cfg.device) if self.cfg.device else GpuNeed()

    def preflight(self) -> None:
        check_model_available(resolve_model(self.cfg.model))  # bundled: a local folder

    def setup(self, worker: Worker) -> None:
        if self._embedder is None:
            device = worker.device(self.cfg.device, f"{self.name} model")
            self._embedder = CaptionEmbedder(self.cfg.model, device, self.cfg.batch_size)
            self._embedder.load()

    def teardown(self) -> None:
        self._embedder = None

    def process(self, batch: pa.Table) -> pa.Table:
        assert self._embedder is not None, "setup() first"
        captions = batch["brief_caption"].to_pylist()
        present = np.array([bool(c and c.strip()) for c in captions], bool)
        vectors = self._embedder.embed([c for c, p in zip(captions, present, strict=True) if p])
        columns = {
            EMBEDDING: embedding_array(vectors, present, self.cfg.dtype),
            "embed_model": pa.array([self.cfg.model if p else None for p in present], pa.string()),
            "kept": pa.array(np.ones(len(present), bool)),
            "reject_reason": pa.nulls(len(present), pa.string()),
            "reject_detail": pa.nulls(len(present), pa.string()),
        }
        arrays = [columns[f.name] if f.name in columns else batch[f.name] for f in self.schema]
        return pa.Table.from_arrays(arrays, schema=self.schema)
