"""The partitions of the pair search (curation/dedup/scale.py): K-means centroids, and where
each vector goes.

A vector's *places* are its home (the nearest centroid) and the partitions almost as near
(within a margin, at most `probes` in all), where it is also a search target, so a pair that
a boundary splits is still found.

Home and places come from matrix products with every centroid. A two-level assignment (an
inverted file over the centroids) would be cheaper, but on embeddings without strong
structure it misplaces many vectors: probing 8 of 45 top lists, 20% got another home than
the nearest centroid, and the pair search's recall at 2M clips fell to 0.83. Above FLAT
partitions K-means *trains* in two levels: sqrt(k) clusters first, then each split into its
share of k, so training costs ~sqrt(k), not k, a sample vector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import faiss
import numpy as np

from curation.dedup.kernels import Products

# Above this many partitions K-means trains in two levels.
FLAT = 1024


@dataclass(frozen=True)
class Plan:
    """Where vectors go: fine partitions (searched inside), put in groups of neighbouring
    partitions, one task a group. No centroids at all: one group, searched exactly."""

    fine: np.ndarray | None = None  # (partitions, d)
    group: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))  # a partition's

    @property
    def groups(self) -> int:
        return int(self.group.max()) + 1


def train(sample: np.ndarray, k: int, groups: int, seed: int) -> Plan:
    """k partitions by spherical K-means on `sample`; the partitions themselves clustered into
    `groups`, so that a vector's nearest partitions tend to share its group."""
    fine = _kmeans(sample, k, seed)
    group = np.zeros(len(fine), np.int64)
    if groups > 1:
        coarse = _kmeans(fine, groups, seed + 1)
        _, group = np.unique(np.argmax(fine @ coarse.T, axis=1), return_inverse=True)
    return Plan(fine, group.astype(np.int64))


def _kmeans(sample: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Spherical K-means (FAISS; on a GPU when FAISS has one); above FLAT, in two levels."""
    if k >= len(sample):
        return np.ascontiguousarray(sample[:k])
    if k > FLAT:
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


def places(
    plan: Plan, emb: np.ndarray, probes: int, margin: float, products: Products
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's places, its home first: (partition ids, whether each slot holds one), both
    (rows, min(probes, partitions)).

    The products (products.near_best) only propose the partitions near a row's best; the
    similarities that rank them are recomputed row by row, so the places are the same in
    any precision and on any machine."""
    assert plan.fine is not None
    width = min(probes, len(plan.fine))
    ids = np.zeros((len(emb), width), np.int64)
    near = np.zeros((len(emb), width), bool)
    centroids = products.matrix(plan.fine)
    for start in range(0, len(emb), 1024):
        x = emb[start : start + 1024]
        r, c = products.near_best(products.matrix(x), centroids, margin)
        sims = np.einsum("ij,ij->i", x[r], plan.fine[c])
        r, slot, c, is_near = rank(r, c, sims, width, margin)
        ids[start + r, slot] = c
        near[start + r, slot] = is_near
    return ids, near


def rank(
    r: np.ndarray, c: np.ndarray, sims: np.ndarray, width: int, margin: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidates (row, column, similarity), every row with one, ranked within their row:
    nearest first (ties: the lower column), the first `width` of each row kept. (row, slot,
    column, whether it is within `margin` of the row's best), slot 0 the best."""
    order = np.lexsort((c, -sims, r))
    r, c, sims = r[order], c[order], sims[order]
    first = np.searchsorted(r, r, side="left")
    slot = np.arange(len(r)) - first
    keep = slot < width
    is_near = sims >= sims[first] - margin
    return r[keep], slot[keep], c[keep], is_near[keep]
