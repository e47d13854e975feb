"""Semantic de-duplication of clips by the cosine similarity of their caption embeddings.

Two phases:

1. **Pairs.** Every pair of clips whose unit-normalised embeddings have cosine similarity at
   least `threshold`. Small sets are searched exactly (FAISS flat inner-product range search,
   all against all). Large sets are partitioned first, SemDeDup-style: spherical K-means
   (trained on a sample) gives each vector a home partition, and the search runs inside each
   partition only, so the cost grows with n * partition size instead of n^2. A pair whose two
   members fall on either side of a partition boundary would be missed, so a vector whose
   second-nearest centroid is almost as near as its home (`boundary_margin`) is also added
   to that second partition as a search target. FAISS runs on the GPU when one is present.
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

import faiss
import numpy as np
import pyarrow as pa

from curation.embed import CaptionEmbedder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DedupResult:
    kept: np.ndarray  # bool per clip
    duplicate_of: np.ndarray  # index of the kept clip, -1 for kept clips
    similarity: np.ndarray  # float32, to the kept clip; nan for kept clips
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray]  # (i, j, similarity), i < j


def _gpu_resources() -> object | None:
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        return faiss.StandardGpuResources()
    return None


def _range_pairs(
    queries: np.ndarray, base: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query row, base row, similarity) of every pair with inner product >= threshold."""
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    # range_search keeps results strictly above the radius; nudge it to include equality.
    lims, sims, ids = index.range_search(queries, float(np.nextafter(threshold, -np.inf)))
    q = np.repeat(np.arange(len(queries)), np.diff(lims).astype(np.int64))
    return q, ids.astype(np.int64), sims


def exact_pairs(
    emb: np.ndarray, threshold: float, chunk: int = 8192
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs i < j with similarity >= threshold, by brute force (FAISS flat index)."""
    index = faiss.IndexFlatIP(emb.shape[1])
    index.add(emb)
    radius = float(np.nextafter(threshold, -np.inf))
    parts = []
    for start in range(0, len(emb), chunk):
        lims, sims, ids = index.range_search(emb[start : start + chunk], radius)
        q = np.repeat(np.arange(start, start + len(lims) - 1), np.diff(lims).astype(np.int64))
        keep = ids > q
        parts.append((q[keep], ids[keep].astype(np.int64), sims[keep]))
    return _concat(parts)


def _concat(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))  # type: ignore[return-value]


def partitioned_pairs(
    emb: np.ndarray,
    threshold: float,
    *,
    partition_size: int = 2000,
    boundary_margin: float = 0.12,
    probes: int = 16,
    train_sample: int = 100_000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs i < j with similarity >= threshold, searched inside K-means partitions."""
    n, d = emb.shape
    k = max(1, n // partition_size)
    rng = np.random.default_rng(seed)
    sample = emb[np.sort(rng.choice(n, size=min(n, max(train_sample, 40 * k)), replace=False))]
    kmeans = faiss.Kmeans(
        d, k, niter=10, spherical=True, seed=seed, gpu=_gpu_resources() is not None
    )
    kmeans.train(sample)
    # Home partition = nearest centroid. A vector is also a search target in every other of its
    # `probes` nearest partitions whose centroid is within `boundary_margin` of its home's.
    sims, assign = kmeans.index.search(emb, min(probes, k))
    home = assign[:, 0]
    order = np.argsort(home, kind="stable")
    bounds = np.searchsorted(home[order], np.arange(k + 1))
    near = (sims[:, :1] - sims[:, 1:] <= boundary_margin) & (assign[:, 1:] >= 0)
    extra_rows, extra_cols = np.nonzero(near)
    extra_part = assign[:, 1:][extra_rows, extra_cols]
    extra_order = np.argsort(extra_part, kind="stable")
    extra_sorted = extra_rows[extra_order]
    extra_bounds = np.searchsorted(extra_part[extra_order], np.arange(k + 1))
    parts = []
    for p in range(k):
        members = order[bounds[p] : bounds[p + 1]]
        if len(members) == 0:
            continue
        targets = np.concatenate([members, extra_sorted[extra_bounds[p] : extra_bounds[p + 1]]])
        qi, ti, s = _range_pairs(emb[members], emb[targets], threshold)
        i, j = members[qi], targets[ti]
        keep = i < j
        parts.append((i[keep], j[keep], s[keep]))
    i, j, s = _concat(parts)
    # A boundary pair can be found from both sides: keep each pair once.
    key = i * n + j
    _, first = np.unique(key, return_index=True)
    return i[first], j[first], s[first]


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
    *,
    exact_max: int = 20_000,
    partition_size: int = 2000,
    boundary_margin: float = 0.12,
    probes: int = 16,
    seed: int = 0,
) -> DedupResult:
    """De-duplicate unit-normalised embeddings (float32, one row per clip)."""
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    if emb.ndim != 2:
        raise ValueError("embeddings must be a 2-D array")
    n = len(emb)
    if n <= exact_max:
        i, j, s = exact_pairs(emb, threshold)
    else:
        i, j, s = partitioned_pairs(
            emb,
            threshold,
            partition_size=partition_size,
            boundary_margin=boundary_margin,
            probes=probes,
            seed=seed,
        )
    log.info("dedup: %d clips, %d similar pairs at >= %.3f", n, len(i), threshold)
    return group_duplicates(n, i, j, s, quality)


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
