"""Similar pairs beyond one process's memory: partitions, one task per group of them.

At Panda-70M scale neither the embeddings (15 GB at float32 for 10M clips) nor the pair
search fit one process. The search is split the way SemDeDup and NeMo Curator's semantic
dedup split it, in phases, each a list of independent tasks that a `Pool` runs (one after
another in this process, or as Ray tasks on a cluster: curation/engine/runners/ray_pool.py):

1. **Plan.** Spherical K-means on a sample of the vectors (drawn by global row, at least 40
   a centroid) gives `n / partition_size` partitions (curation/dedup/partitions.py); the
   centroids themselves are clustered into `ceil(n / coarse_size)` groups of neighbouring
   partitions, one pair-search task each.
2. **Assign.** One task per block of the input (whole shards) reads its vectors and gives
   each its nearest centroid as home, by matrix products with every centroid; a vector whose
   next centroids are almost as near (within `boundary_margin`, at most `probes` in all) is
   also a search target there, so a pair split by a boundary is still found. Each group's
   piece of the block goes to scratch storage.
3. **Pairs per group.** One task per group reads its pieces (memory bounded by the group,
   not by n) and searches each partition: its home rows against its home and boundary rows
   (matrix products, then a threshold). Every similarity is recomputed from the two vectors
   row by row, so it does not depend on the BLAS threads of the machine that found it.
4. **Merge.** The pairs of all groups are merged (a pair found twice counts once) and
   grouped once over all clips (curation/dedup.group_duplicates), so groups of duplicates
   that span partitions resolve exactly as if one process had searched everything.

Up to `exact_max` vectors there is no plan: one task searches all pairs exactly. Everything a
task computes depends only on the data and the config: the sample is drawn by global row,
blocks and groups are fixed by the plan, not by the number of workers, so any number of
workers, and a task retried after a crash, gives the same pairs.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass, field, fields
from typing import Protocol

import numpy as np

from curation.core.pool import Pool, SerialPool
from curation.dedup.kernels import Products, SearchDtype, exact_similarity
from curation.dedup.partitions import Plan, train
from curation.dedup.partitions import places as partition_places
from curation.storage import Storage

log = logging.getLogger(__name__)


class Blocks(Protocol):
    """The input in blocks: unit-normalised vectors, in a fixed global row order."""

    dtype: str  # how pieces are stored in scratch: "float16" or "float32" (lossless for it)

    def sizes(self) -> list[int]: ...

    def read(self, block: int) -> np.ndarray: ...  # float32 rows of one block, in order


@dataclass
class ArrayBlocks:
    """An in-memory array, cut into blocks of `block_rows`."""

    emb: np.ndarray
    block_rows: int = 200_000
    dtype: str = "float32"

    def sizes(self) -> list[int]:
        n = len(self.emb)
        return [min(self.block_rows, n - s) for s in range(0, n, self.block_rows)] or [0]

    def read(self, block: int) -> np.ndarray:
        start = block * self.block_rows
        return np.ascontiguousarray(self.emb[start : start + self.block_rows], dtype=np.float32)


class Scratch(Protocol):
    def put(self, name: str, arrays: dict[str, np.ndarray]) -> None: ...

    def get(self, name: str) -> dict[str, np.ndarray]: ...

    def clear(self) -> None: ...


@dataclass
class MemoryScratch:
    """Pieces in this process's memory; each is read once (by its group's task), so it goes
    as it is read."""

    _data: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def put(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        self._data[name] = arrays

    def get(self, name: str) -> dict[str, np.ndarray]:
        return self._data.pop(name)

    def clear(self) -> None:
        self._data.clear()


@dataclass
class StorageScratch:
    """Pieces as .npz files in a folder every node can reach (the run's storage)."""

    storage: Storage

    def put(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        self.storage.write_bytes(f"{name}.npz", buffer.getvalue())  # atomic

    def get(self, name: str) -> dict[str, np.ndarray]:
        with np.load(io.BytesIO(self.storage.read_bytes(f"{name}.npz"))) as data:
            return {k: data[k] for k in data.files}

    def clear(self) -> None:
        self.storage.delete_folder("")


@dataclass(frozen=True)
class SearchParams:
    """How pairs are searched: DedupConfig's fields of the same names (documented there)."""

    threshold: float
    exact_max: int
    partition_size: int
    boundary_margin: float
    probes: int
    coarse_size: int
    train_sample: int
    seed: int = 0
    # Where the matrix products run: None, this machine's CPU; else a torch device ("cuda"
    # when the tasks reserved a GPU); and in what precision (curation/dedup/kernels.py).
    # Every similarity kept is still recomputed on the CPU.
    torch_device: str | None = None
    search_dtype: SearchDtype = "auto"

    def products(self) -> Products:
        return Products.on(self.torch_device, self.search_dtype)

    @classmethod
    def of(cls, cfg: object) -> SearchParams:
        """From a config section with fields of the same names (DedupConfig)."""
        names = [f.name for f in fields(cls) if hasattr(cfg, f.name)]
        return cls(**{name: getattr(cfg, name) for name in names})


Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # (i, j, similarity), global rows, i < j


def find_pairs(blocks: Blocks, params: SearchParams, pool: Pool, scratch: Scratch) -> Pairs:
    """Every pair found at similarity >= params.threshold, each once, sorted by (i, j)."""
    sizes = blocks.sizes()
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(offsets[-1])
    plan = Plan()
    if n > params.exact_max:
        k = max(1, n // params.partition_size)
        sample = _sample_rows(n, max(params.train_sample, 40 * k), params.seed)
        wanted = [sample[(sample >= offsets[b]) & (sample < offsets[b + 1])] - offsets[b]
                  for b in range(len(sizes))]  # fmt: skip
        picks = [(blocks, b, rows) for b, rows in enumerate(wanted) if len(rows)]
        vectors = np.concatenate(pool.map(_sample_block, picks, "dedup sample"))
        groups = min(k, math.ceil(n / params.coarse_size))
        (plan,) = pool.map(_train, [(vectors, k, groups, params.seed)], "dedup kmeans")
    scratch.clear()
    tasks = [(blocks, b, int(offsets[b]), plan, params, scratch) for b in range(len(sizes))]
    counts = np.stack(pool.map(_assign_block, tasks, "dedup assign"))  # block x group
    log.info("dedup: %d vectors, %d group(s), %d partition(s), %.2f group places a vector",
             n, plan.groups, len(plan.group), counts.sum() / max(n, 1))  # fmt: skip
    jobs = [(scratch, g, np.flatnonzero(counts[:, g]), plan, params)
            for g in range(plan.groups) if counts[:, g].sum() > 1]  # fmt: skip
    found = pool.map(_group_pairs, jobs, "dedup pairs")
    scratch.clear()
    i, j, s = _concat(found)
    key = i * max(n, 1) + j
    _, first = np.unique(key, return_index=True)  # sorted by (i, j); one of each
    return i[first], j[first], s[first]


def _sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, size), replace=False))


def _sample_block(args: tuple[Blocks, int, np.ndarray]) -> np.ndarray:
    blocks, block, rows = args
    return blocks.read(block)[rows]


def _train(args: tuple[np.ndarray, int, int, int]) -> Plan:
    return train(*args)


def _assign_block(args: tuple[Blocks, int, int, Plan, SearchParams, Scratch]) -> np.ndarray:
    """Write each group's piece of one block; how many rows each group got."""
    blocks, block, offset, plan, params, scratch = args
    emb = blocks.read(block)
    counts = np.zeros(plan.groups, np.int64)
    if len(emb) == 0:
        return counts
    if plan.fine is None:  # one group, searched exactly
        places = np.zeros((len(emb), 1), np.int64)
        near = np.ones((len(emb), 1), bool)
    else:
        places, near = partition_places(plan, emb, params.probes, params.boundary_margin,
                                        params.products())  # fmt: skip
    place_group = np.where(near, plan.group[places], -1)
    for g in np.unique(place_group[place_group >= 0]):
        local = np.flatnonzero((place_group == g).any(axis=1))
        r, c = np.nonzero(near[local] & (place_group[local] == g))
        piece = {
            "ids": local + offset,
            "vectors": emb[local].astype(blocks.dtype),
            "row": r.astype(np.int64),  # into this piece's rows
            "partition": places[local][r, c],
            "home": c == 0,
        }
        scratch.put(f"g{g:05d}/b{block:06d}", piece)
        counts[g] = len(local)
    return counts


def _group_pairs(args: tuple[Scratch, int, np.ndarray, Plan, SearchParams]) -> Pairs:
    """The pairs one group's partitions hold: each partition's home rows searched against
    its home and boundary rows (or, with no partitions, all against all)."""
    scratch, group, from_blocks, plan, params = args
    pieces = [scratch.get(f"g{group:05d}/b{b:06d}") for b in from_blocks]
    starts = np.cumsum([0, *(len(p["ids"]) for p in pieces)])
    ids = np.concatenate([p["ids"] for p in pieces])
    emb = np.concatenate([p["vectors"] for p in pieces])  # as stored: float16 or float32
    row = np.concatenate([p["row"] + at for p, at in zip(pieces, starts, strict=False)])
    partition = np.concatenate([p["partition"] for p in pieces])
    home = np.concatenate([p["home"] for p in pieces])
    products = params.products()
    if plan.fine is None:
        a, b, sims = exact_pairs(emb, params.threshold, products)
    else:
        order = np.lexsort((row, ~home, partition))  # by partition, its home rows first
        row, partition, home = row[order], partition[order], home[order]
        bounds = np.flatnonzero(np.diff(partition)) + 1
        found = []
        for lo, hi in zip([0, *bounds], [*bounds, len(row)], strict=True):
            targets, homes = row[lo:hi], int(home[lo:hi].sum())
            if homes and len(targets) > 1:
                q, t = upper_pairs(emb[targets], homes, params.threshold, products)
                found.append((targets[q], targets[t], np.zeros(len(q), np.float32)))
        a, b, _ = _concat(found)
        sims = exact_similarity(emb, a, b)
    keep = sims >= params.threshold
    i, j = ids[a[keep]], ids[b[keep]]
    return np.minimum(i, j), np.maximum(i, j), sims[keep]


def exact_pairs(emb: np.ndarray, threshold: float, products: Products | None = None) -> Pairs:
    """All pairs i < j with similarity >= threshold, by brute force (blocked matrix products,
    similarities recomputed row by row)."""
    q, t = upper_pairs(emb, len(emb), threshold, products or Products())
    sims = exact_similarity(emb, q, t)
    keep = sims >= threshold
    return q[keep], t[keep], sims[keep]


def upper_pairs(
    x: np.ndarray, homes: int, low: float, products: Products
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates (q, t), q < t and q one of the first `homes` rows, for every pair with
    x[q] . x[t] >= low: each home row against the home rows after it and every other row (a
    pair of home rows is computed once), `products.rows` home rows at a time."""
    qs, ts = [], []
    x = products.matrix(x)
    for s in range(0, homes, products.rows):
        e = min(s + products.rows, homes)
        q, t = products.candidates(x[s:e], x[s:e], low)  # the block against itself
        keep = t > q
        qs.append(q[keep] + s)
        ts.append(t[keep] + s)
        if e < len(x):  # against the rows after it: few rows hold a candidate there
            q, t = products.candidates(x[s:e], x[e:], low)
            qs.append(q + s)
            ts.append(t + e)
    if not qs:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(qs).astype(np.int64), np.concatenate(ts).astype(np.int64)


def _concat(parts: list[Pairs]) -> Pairs:
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))  # type: ignore[return-value]


def in_memory(emb: np.ndarray, params: SearchParams) -> Pairs:
    """find_pairs on an in-memory array, every task in this process."""
    return find_pairs(ArrayBlocks(emb), params, SerialPool(), MemoryScratch())
