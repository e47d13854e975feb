"""dedup: drop clips whose brief captions say the same thing (a global stage).

It judges every kept clip of the run at once by the caption vectors the embed stage stored
with each shard (stages/embed.py), without ever holding them all: the pair search runs as
tasks over blocks of shards and groups of partitions (curation/dedup/scale.py), in-process or as
Ray tasks, with the same result. The clip with the best quality key in each group is kept,
the others are rejected as `duplicate` with `duplicate_of` and `similarity`. Every pair found
at or above the threshold is also written to dedup/_pairs/similar_pairs.parquet. The vectors
stay in embeddings/; dedup's output carries everything else forward.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa

from curation.core import schemas
from curation.core.config import TaskResources
from curation.core.pool import Pool
from curation.dedup.config import DedupConfig
from curation.dedup.groups import QUALITY_FACTORS, group_duplicates, quality_key
from curation.dedup.scale import SearchParams, StorageScratch, find_pairs
from stages.base import GlobalJob, Stage
from stages.embed import EMBEDDING, read_embeddings

DECISIONS = pa.schema([*schemas.DEDUP_COLUMNS, *schemas.VERDICT])
SCRATCH = ".work"  # in dedup's folder: the partitions' pieces while they are searched
PAIRS = "_pairs/similar_pairs.parquet"  # in dedup's folder; "_": not read as a shard
PAIRS_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("other_clip_id", pa.string(), nullable=False),  # after clip_id in run order
        pa.field("similarity", pa.float32(), nullable=False),  # cosine of the brief captions
    ]
)


@dataclass(frozen=True)
class Decision:
    """One shard's duplicates: input row -> (the clip it repeats, their similarity)."""

    rows: np.ndarray
    of: list[str]
    similarity: np.ndarray


@dataclass(frozen=True)
class ShardVectors:
    """The Blocks of curation/dedup/scale.py over the run's shards: the clips that have a
    caption vector, block by block, in shard and row order."""

    job: GlobalJob
    counts: tuple[int, ...]  # vectors a block
    dtype: str

    def sizes(self) -> list[int]:
        return list(self.counts)

    def read(self, block: int) -> np.ndarray:
        parts = [read_embeddings(self.job.read(u, [EMBEDDING])[EMBEDDING])[0]
                 for u in self.job.blocks[block]]  # fmt: skip
        parts = [p for p in parts if len(p)]  # a shard may have no captioned clip
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def _index_block(args: tuple[GlobalJob, int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per shard of a block: which rows have a vector, and their quality keys."""
    job, block = args
    out = []
    for unit in job.blocks[block]:
        rows = job.read(unit, ["embed_model", "quality", *QUALITY_FACTORS])
        # A row has a vector exactly when it names the model that made it (stages/embed.py).
        present = ~np.asarray(rows["embed_model"].is_null().to_numpy(zero_copy_only=False), bool)
        out.append((present, quality_key(rows)[present]))
    return out


def _clip_ids(args: tuple[GlobalJob, int, list[tuple[int, np.ndarray]]]) -> list[list[str]]:
    """The clip ids at the given rows of some shards of a block (the kept clips of groups)."""
    job, block, wanted = args
    units = job.blocks[block]
    return [job.read(units[k], ["clip_id"])["clip_id"].take(pa.array(rows)).to_pylist()
            for k, rows in wanted]  # fmt: skip


@dataclass(kw_only=True)
class DedupStage(Stage):
    name: ClassVar[str] = "dedup"
    output_folder: ClassVar[str] = "dedup"
    order: ClassVar[float | None] = 100
    schema: ClassVar[pa.Schema] = schemas.DEDUP
    adds: ClassVar[list[pa.Field]] = schemas.DEDUP_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", EMBEDDING)
    also_reads: ClassVar[tuple[str, ...]] = ("quality", *QUALITY_FACTORS)  # the quality key
    is_global: ClassVar[bool] = True

    cfg: DedupConfig

    @property
    def task_resources(self) -> TaskResources:
        return self.cfg.tasks

    def bind(self, previous: pa.Schema) -> None:
        """Everything before it except the vectors (they stay in the embed stage's folder)."""
        carried = pa.schema([f for f in previous if f.name not in (EMBEDDING, "embed_model")])
        self.schema = schemas.extend(carried, self.adds)  # type: ignore[misc]

    def decide(self, job: GlobalJob, pool: Pool) -> list[Decision]:
        """Every shard's duplicates (one Decision a shard, in order)."""
        index = pool.map(_index_block, [(job, b) for b in range(len(job.blocks))], "dedup index")
        shards = [s for block in index for s in block]
        present = [p for p, _ in shards]
        quality = np.concatenate([q for _, q in shards]) if shards else np.zeros(0)
        # One precision for the run (embed.dtype is part of its fingerprint).
        kind = job.input_type(job.blocks[0][0], EMBEDDING).value_type if shards else None
        dtype = "float32" if kind == pa.float32() else "float16"
        vectors = ShardVectors(job, tuple(sum(int(p.sum()) for p, _ in b) for b in index), dtype)
        scratch = StorageScratch(job.run.storage.child(f"{self.output_folder}/{SCRATCH}"))
        # Tasks that reserved a GPU do their matrix products on it (FAISS K-means too, with
        # faiss-gpu); what is kept is recomputed on the CPU either way.
        device = "cuda" if job.task_gpus > 0 else None
        params = dataclasses.replace(SearchParams.of(self.cfg), torch_device=device)
        i, j, s = find_pairs(vectors, params, pool, scratch)
        found = group_duplicates(len(quality), i, j, s, quality)
        # Global vector index -> (shard, input row): shard by shard, in order.
        shard_of = np.repeat(np.arange(len(shards)), [int(p.sum()) for p in present])
        row_of = np.concatenate([np.flatnonzero(p) for p in present]) if shards else np.zeros(0)
        members = np.unique(np.concatenate([i, j]))
        names = self._names(job, pool, shard_of[members], row_of[members])
        name = dict(zip(members.tolist(), names, strict=True))
        pairs = {"clip_id": [name[x] for x in i.tolist()],
                 "other_clip_id": [name[x] for x in j.tolist()], "similarity": s}  # fmt: skip
        job.run.storage.write_table(f"{self.output_folder}/{PAIRS}", pa.table(pairs, PAIRS_SCHEMA))
        dups = np.flatnonzero(~found.kept)  # ascending, so shard by shard
        bounds = np.searchsorted(shard_of[dups], np.arange(len(shards) + 1))
        decisions = []
        for k in range(len(shards)):
            mine = dups[bounds[k] : bounds[k + 1]]
            decisions.append(
                Decision(
                    row_of[mine].astype(np.int64),
                    [name[int(x)] for x in found.duplicate_of[mine]],
                    found.similarity[mine],
                )
            )
        return decisions

    @staticmethod
    def _names(job: GlobalJob, pool: Pool, shards: np.ndarray, rows: np.ndarray) -> list[str]:
        """The clip ids of (shard, row) pairs, read by one task per block that has some."""
        first = np.cumsum([0, *(len(b) for b in job.blocks)])
        tasks, where = [], []
        for b in range(len(job.blocks)):
            inside = np.flatnonzero((shards >= first[b]) & (shards < first[b + 1]))
            wanted = [(int(k - first[b]), rows[inside[shards[inside] == k]])
                      for k in np.unique(shards[inside])]  # fmt: skip
            if wanted:
                tasks.append((job, b, wanted))
                where.append([inside[shards[inside] == first[b] + k] for k, _ in wanted])
        out = np.empty(len(shards), object)
        for places, found in zip(where, pool.map(_clip_ids, tasks, "dedup names"), strict=True):
            for at, ids in zip(places, found, strict=True):
                out[at] = ids
        return out.tolist()

    def decided(self, rows: pa.Table, decision: Decision) -> pa.Table:
        """The dedup columns and verdict of one shard's input rows."""
        n = rows.num_rows
        duplicate_of: list[str | None] = [None] * n
        similarity = np.full(n, np.nan, np.float32)
        kept = np.ones(n, bool)
        reason: list[str | None] = [None] * n
        detail: list[str | None] = [None] * n
        for row, of, sim in zip(decision.rows.tolist(), decision.of, decision.similarity,
                                strict=True):  # fmt: skip
            duplicate_of[row], similarity[row], kept[row] = of, sim, False
            reason[row] = "duplicate"
            detail[row] = f"caption repeats {of} (cosine {sim:.3f} >= {self.cfg.threshold})"
        return pa.table(
            {
                "duplicate_of": pa.array(duplicate_of, pa.string()),
                "similarity": pa.array(similarity, mask=np.isnan(similarity)),
                "kept": kept,
                "reject_reason": pa.array(reason, pa.string()),
                "reject_detail": pa.array(detail, pa.string()),
            },
            schema=DECISIONS,
        )
