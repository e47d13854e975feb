"""Semantic de-duplication of clips by the cosine similarity of their caption embeddings.

Two phases:

1. **Pairs.** Every pair of clips whose unit-normalised embeddings have cosine similarity at
   least `threshold` (curation/dedup/scale.py). Small sets are searched exactly (blocked
   matrix products, all against all). Large sets are partitioned first,
   SemDeDup-style: spherical K-means (trained on a sample, two levels for large sets) gives
   each vector a home partition, and the search runs inside each partition only, so the cost
   grows with n * partition size instead of n^2. A pair whose two members fall on either side
   of a partition boundary would be missed, so a vector whose next-nearest centroids are
   almost as near as its home (`boundary_margin`, at most `probes`) is also a search target
   there. The same code runs in this process and as tasks on a Ray cluster.
2. **Groups.** Clips are visited best first (by a quality key, ties by position); a clip not
   yet marked as a duplicate is kept, and every unmarked clip similar to it becomes its
   duplicate (`duplicate_of` = the kept clip, `similarity` = their cosine similarity). Every
   duplicate is therefore directly similar to the clip that stands for it, never through a
   chain, and the result depends only on the input order, the embeddings and the config.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from curation.dedup.config import DedupConfig
from curation.dedup.scale import SearchParams, exact_pairs, in_memory  # noqa: F401  (public here)
from curation.embed import CaptionEmbedder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DedupResult:
    kept: np.ndarray  # bool per clip
    duplicate_of: np.ndarray  # index of the kept clip, -1 for kept clips
    similarity: np.ndarray  # float32, to the kept clip; nan for kept clips
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray]  # (i, j, similarity), i < j


def group_duplicates(
    n: int, i: np.ndarray, j: np.ndarray, sims: np.ndarray, quality: np.ndarray | None = None
) -> DedupResult:
    """Greedy best-first grouping of similar pairs (see the module docstring)."""
    quality = np.zeros(n) if quality is None else np.asarray(quality, dtype=np.float64)
    # Best first; among equals, the earlier row wins.
    rank = np.lexsort((np.arange(n), -quality))
    a = np.concatenate([i, j])
    b = np.concatenate([j, i])
    s = np.concatenate([sims, sims]).astype(np.float32)
    order = np.argsort(a, kind="stable")
    a, b, s = a[order], b[order], s[order]
    starts = np.searchsorted(a, np.arange(n + 1))
    duplicate_of = np.full(n, -1, np.int64)
    similarity = np.full(n, np.nan, np.float32)
    kept = np.ones(n, bool)
    for clip in rank:
        if not kept[clip]:
            continue
        # A still-kept neighbour has not been visited yet: had it been, being kept, it would
        # already have marked this clip. So it ranks lower and becomes this clip's duplicate.
        lo, hi = starts[clip], starts[clip + 1]
        for other, sim in zip(b[lo:hi], s[lo:hi], strict=True):
            if kept[other]:
                kept[other] = False
                duplicate_of[other] = clip
                similarity[other] = sim
    return DedupResult(
        kept=kept, duplicate_of=duplicate_of, similarity=similarity, pairs=(i, j, sims)
    )


def deduplicate(
    emb: np.ndarray,
    threshold: float,
    quality: np.ndarray | None = None,
    params: SearchParams | None = None,
    **search: Any,
) -> DedupResult:
    """De-duplicate unit-normalised embeddings (float32, one row per clip), in this process.

    `search`: DedupConfig's search fields (exact_max, partition_size, boundary_margin,
    probes, coarse_size, ...; their defaults otherwise), or all of them as `params`. The same
    partitions and pairs as the distributed path (stages/dedup.py on Ray)."""
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    if emb.ndim != 2:
        raise ValueError("embeddings must be a 2-D array")
    params = params or SearchParams.of(DedupConfig(threshold=threshold, **search))
    i, j, s = in_memory(emb, params)
    log.info("dedup: %d clips, %d similar pairs at >= %.3f", len(emb), len(i), threshold)
    return group_duplicates(len(emb), i, j, s, quality)


DEDUP_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("kept", pa.bool_(), nullable=False),
        pa.field("duplicate_of", pa.string()),  # the kept clip this one duplicates
        pa.field("similarity", pa.float32()),  # cosine similarity of their captions
    ]
)

QUALITY_FACTORS = ("display_width", "display_height", "duration_s", "keyframe_rate")


def quality_key(table: pa.Table) -> np.ndarray:
    """The clip to keep in a group is the one with the largest key.

    `quality` when the table has it; otherwise resolution x duration x keyframe rate
    (display_width * display_height * duration_s * keyframe_rate), each factor that the table
    lacks counting as 1. With none of them, every clip ties and the earliest row is kept.
    """
    if "quality" in table.column_names:
        return np.nan_to_num(table["quality"].to_numpy(zero_copy_only=False).astype(np.float64))
    key = np.ones(table.num_rows)
    for name in QUALITY_FACTORS:
        if name in table.column_names:
            key *= np.nan_to_num(
                table[name].to_numpy(zero_copy_only=False).astype(np.float64), nan=0.0
            )
    return key


def dedup_captions(
    table: pa.Table, embedder: CaptionEmbedder, threshold: float, **search: Any
) -> pa.Table:
    """`clip_id`, `brief_caption` (+ optional quality columns) -> DEDUP_SCHEMA rows, same order.

    Clips with an empty or missing caption are kept and never compared: there is nothing to
    judge them by.
    """
    missing = [c for c in ("clip_id", "brief_caption") if c not in table.column_names]
    if missing:
        raise ValueError(f"dedup needs columns {missing}")
    ids = table["clip_id"].to_pylist()
    captions = table["brief_caption"].to_pylist()
    usable = np.array([bool(c and c.strip()) for c in captions])
    rows = np.flatnonzero(usable)
    result = deduplicate(
        embedder.embed([captions[r] for r in rows]),
        threshold,
        quality_key(table).take(rows) if len(rows) else None,
        **search,
    )
    kept = np.ones(len(ids), bool)
    duplicate_of: list[str | None] = [None] * len(ids)
    similarity = np.full(len(ids), np.nan, np.float32)
    for local, row in enumerate(rows):
        if not result.kept[local]:
            kept[row] = False
            duplicate_of[row] = ids[rows[result.duplicate_of[local]]]
            similarity[row] = result.similarity[local]
    return pa.table(
        {
            "clip_id": ids,
            "kept": kept,
            "duplicate_of": duplicate_of,
            "similarity": pa.array(similarity, mask=np.isnan(similarity)),
        },
        schema=DEDUP_SCHEMA,
    )
