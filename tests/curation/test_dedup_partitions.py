"""Where vectors go (curation/dedup_partitions.py): the best partition and those within the
margin; with more than FLAT partitions (K-means in two levels) the search still finds what
exact search finds."""

from __future__ import annotations

import numpy as np
import pytest

from curation.dedup_partitions import nearest
from curation.dedup_scale import SearchParams, exact_pairs, in_memory


def clustered(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((50, dim)).astype(np.float32)
    emb = rng.standard_normal((n, dim)).astype(np.float32) * 0.8 + centers[rng.integers(0, 50, n)]
    plants = rng.choice(n, n // 10, replace=False)
    emb[plants] = emb[rng.integers(0, n, len(plants))] + rng.standard_normal(
        (len(plants), dim)).astype(np.float32) * 0.5  # fmt: skip
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


@pytest.mark.parametrize("width, margin", [(1, 0.1), (3, 0.0), (4, 0.05), (8, 0.3), (12, 2.0)])
def test_places_are_the_best_then_the_nearest_within_the_margin(width, margin):
    rng = np.random.default_rng(width)
    sims = np.round(rng.uniform(-1, 1, (400, 12)), 1).astype(np.float32)  # many ties
    ids, near = nearest(sims, width, margin)
    for row, got, used in zip(sims, ids, near, strict=True):
        ranked = sorted(range(len(row)), key=lambda c: (-row[c], c))  # ties: the lower column
        want = [c for c in ranked if row[c] >= row[ranked[0]] - margin][:width]
        assert got[0] == want[0] and used[0]
        assert sorted(got[used].tolist()) == sorted(want)


def test_with_kmeans_in_two_levels_the_search_finds_the_pairs_exact_search_finds():
    emb = clustered(24_000, seed=1)
    params = SearchParams(threshold=0.8, exact_max=1000, partition_size=20, boundary_margin=0.12,
                          probes=16, coarse_size=8000, train_sample=1000)  # fmt: skip
    i, j, s = in_memory(emb, params)  # 1200 partitions: above FLAT
    a, b, _ = exact_pairs(emb, 0.8)
    truth = set(zip(a.tolist(), b.tolist(), strict=True))
    found = set(zip(i.tolist(), j.tolist(), strict=True))
    assert len(truth) > 1000 and found <= truth
    assert len(found & truth) / len(truth) >= 0.99
    assert (s >= 0.8).all()
