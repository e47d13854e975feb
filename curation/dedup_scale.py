"""Similar pairs beyond one process's memory: partitions, one task per group of them.

At Panda-70M scale neither the embeddings (15 GB at float32 for 10M clips) nor the pair
search fit one process. The search is split the way SemDeDup and NeMo Curator's semantic
dedup split it, in phases, each a list of independent tasks that a `Pool` runs (one after
another in this process, or as Ray tasks on a cluster: curation/runners/ray_pool.py):

1. **Plan.** Spherical K-means on a sample of the vectors (drawn by global row, at least 40
   a centroid) gives `n / partition_size` partitions; the centroids themselves are clustered
   into `ceil(n / coarse_size)` groups of neighbouring partitions, one pair-search task each.
2. **Assign.** One task per block of the input (whole shards) reads its vectors and gives
   each its nearest centroid as home, by exact matrix products against every centroid; a
   vector whose next centroids are almost as near (within `boundary_margin`, at most
   `probes` in all) is also a search target there, so a pair split by a boundary is still
   found. Each group's piece of the block goes to scratch storage.
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

import faiss
import numpy as np

from curation.pool import Pool, SerialPool
from curation.storage import Storage

log = logging.getLogger(__name__)

# Blocked matrix products may differ from the row-by-row similarity in the last bits: search
# a little below the threshold, then keep what the recomputed similarity puts at or above it.
SEARCH_SLACK = 1e-4


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
    # Where the matrix products run: None, NumPy on the CPU; else a torch device ("cuda" when
    # the tasks reserved a GPU). Every similarity kept is still recomputed on the CPU.
    torch_device: str | None = None

    @classmethod
    def of(cls, cfg: object) -> SearchParams:
        """From a config section with fields of the same names (DedupConfig)."""
        names = [f.name for f in fields(cls) if hasattr(cfg, f.name)]
        return cls(**{name: getattr(cfg, name) for name in names})


Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # (i, j, similarity), global rows, i < j


@dataclass(frozen=True)
class Plan:
    """Where vectors go: fine partitions (searched inside), put in groups of neighbouring
    partitions, one task a group. No centroids at all: one group, searched exactly."""

    fine: np.ndarray | None = None  # (partitions, d)
    group: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))  # a partition's

    @property
    def groups(self) -> int:
        return int(self.group.max()) + 1


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


# Above this many centroids K-means trains in two levels. (Assignment stays exact, against
# every centroid: on embeddings without strong structure a two-level assignment puts ~8% of
# the vectors in the wrong partition, and recall falls to ~0.9.)
FLAT_KMEANS = 1024


def _kmeans(sample: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Spherical K-means; above FLAT_KMEANS centroids, in two levels (sqrt(k) clusters first, then
    each split into its share of k), so training costs ~sqrt(k), not k, a sample vector."""
    if k >= len(sample):
        return np.ascontiguousarray(sample[:k])
    if k > FLAT_KMEANS:
        top = _kmeans(sample, math.ceil(math.sqrt(k)), seed)
        home = np.argmax(sample @ top.T, axis=1)
        parts = []
        for c in range(len(top)):
            members = sample[home == c]
            share = round(k * len(members) / len(sample))
            if share:
                parts.append(_kmeans(members, min(share, len(members)), seed + 1 + c))
        return np.concatenate(parts)
    gpu = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    kmeans = faiss.Kmeans(sample.shape[1], k, niter=10, spherical=True, seed=seed, gpu=gpu)
    kmeans.train(sample)
    return kmeans.centroids


def _train(args: tuple[np.ndarray, int, int, int]) -> Plan:
    """k partitions by spherical K-means; the partitions themselves clustered into `groups`,
    so that a vector's nearest partitions tend to share its group."""
    sample, k, groups, seed = args
    fine = _kmeans(sample, k, seed)
    group = np.zeros(len(fine), np.int64)
    if groups > 1:
        coarse = _kmeans(fine, groups, seed + 1)
        _, group = np.unique(np.argmax(fine @ coarse.T, axis=1), return_inverse=True)
    return Plan(fine, group.astype(np.int64))


def _nearest(sims: np.ndarray, width: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the `width` nearest columns, nearest first (ties: the lower column), and
    whether each is within `margin` of the row's best."""
    if width < sims.shape[1]:
        top = np.argpartition(-sims, width - 1, axis=1)[:, :width]
    else:
        top = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
    vals = np.take_along_axis(sims, top, axis=1)
    rows = np.repeat(np.arange(len(sims)), top.shape[1])
    order = np.lexsort((top.reshape(-1), -vals.reshape(-1), rows)).reshape(top.shape)
    order -= np.arange(len(sims))[:, None] * top.shape[1]
    ids = np.take_along_axis(top, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(vals, order, axis=1)
    return ids, vals >= vals[:, :1] - margin


def _places(
    plan: Plan, emb: np.ndarray, params: SearchParams, chunk: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's `probes` nearest partitions, and whether each is a place: the home (first)
    and those within `boundary_margin` of it (matrix products)."""
    assert plan.fine is not None
    width = min(params.probes, len(plan.fine))
    ids = np.zeros((len(emb), width), np.int64)
    near = np.zeros((len(emb), width), bool)
    for start in range(0, len(emb), chunk):
        rows = slice(start, start + chunk)
        sims = products(emb[rows], plan.fine, params.torch_device)
        ids[rows], near[rows] = _nearest(sims, width, params.boundary_margin)
    return ids, near


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
        places, near = _places(plan, emb, params)
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
    emb = np.concatenate([p["vectors"] for p in pieces]).astype(np.float32)
    row = np.concatenate([p["row"] + at for p, at in zip(pieces, starts, strict=False)])
    partition = np.concatenate([p["partition"] for p in pieces])
    home = np.concatenate([p["home"] for p in pieces])
    low = params.threshold - SEARCH_SLACK
    if plan.fine is None:
        a, b, sims = exact_pairs(emb, low, params.torch_device)  # recomputed row by row
    else:
        order = np.lexsort((~home, row, partition))  # by partition, home rows first
        row, partition, home = row[order], partition[order], home[order]
        bounds = np.flatnonzero(np.diff(partition)) + 1
        found = []
        for lo, hi in zip([0, *bounds], [*bounds, len(row)], strict=True):
            targets, is_home = row[lo:hi], home[lo:hi]
            queries = targets[is_home]
            if len(queries) == 0 or len(targets) < 2:
                continue
            q, t = _at_least_blocked(emb[queries], emb[targets], low, params.torch_device)
            qa, tb = queries[q], targets[t]
            # Two home rows find each other twice: keep it once. A boundary row is found by
            # home rows only.
            keep = (qa != tb) & (~is_home[t] | (qa < tb))
            found.append((qa[keep], tb[keep], np.zeros(int(keep.sum()), np.float32)))
        a, b, _ = _concat(found)
        sims = exact_similarity(emb, a, b)
    keep = sims >= params.threshold
    i, j = ids[a[keep]], ids[b[keep]]
    return np.minimum(i, j), np.maximum(i, j), sims[keep]


def exact_pairs(
    emb: np.ndarray, threshold: float, torch_device: str | None = None, chunk: int = 2048
) -> Pairs:
    """All pairs i < j with similarity >= threshold, by brute force (blocked matrix products)."""
    parts = []
    for start in range(0, len(emb), chunk):
        q, t = at_least(emb[start : start + chunk], emb[start:], threshold, torch_device)
        q += start
        t += start
        keep = t > q
        parts.append((q[keep], t[keep], exact_similarity(emb, q[keep], t[keep])))
    return _concat(parts)


def _at_least_blocked(
    a: np.ndarray, b: np.ndarray, low: float, torch_device: str | None, rows: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """at_least() a few hundred rows of `a` at a time: the products stay in cache."""
    if torch_device is not None or len(a) <= rows:
        return at_least(a, b, low, torch_device)
    parts = [at_least(a[s : s + rows], b, low, None) for s in range(0, len(a), rows)]
    r = np.concatenate([p[0] + s for p, s in zip(parts, range(0, len(a), rows), strict=True)])
    return r, np.concatenate([p[1] for p in parts])


def products(a: np.ndarray, b: np.ndarray, torch_device: str | None) -> np.ndarray:
    """a @ b.T, float32, by NumPy or on a torch device."""
    if torch_device is None:
        return a @ b.T
    import torch

    x, y = torch.from_numpy(a).to(torch_device), torch.from_numpy(b).to(torch_device)
    return (x @ y.T).cpu().numpy()


def at_least(
    a: np.ndarray, b: np.ndarray, low: float, torch_device: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """(row of a, row of b) wherever their inner product is >= low; on a torch device only
    the indices come back."""
    if torch_device is None:
        return np.nonzero(a @ b.T >= low)
    import torch

    x, y = torch.from_numpy(a).to(torch_device), torch.from_numpy(b).to(torch_device)
    r, c = torch.nonzero(x @ y.T >= low, as_tuple=True)
    return r.cpu().numpy(), c.cpu().numpy()


def exact_similarity(
    emb: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 65536
) -> np.ndarray:
    """Inner products of rows a[k], b[k], the same on every machine (no BLAS)."""
    out = np.empty(len(a), np.float32)
    for s in range(0, len(a), chunk):
        x, y = emb[a[s : s + chunk]], emb[b[s : s + chunk]]
        out[s : s + chunk] = np.einsum("ij,ij->i", x, y)
    return out


def _concat(parts: list[Pairs]) -> Pairs:
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))  # type: ignore[return-value]


def in_memory(emb: np.ndarray, params: SearchParams) -> Pairs:
    """find_pairs on an in-memory array, every task in this process."""
    return find_pairs(ArrayBlocks(emb), params, SerialPool(), MemoryScratch())
