"""Where vectors go (curation/dedup/partitions.py): the best partition and those within the
margin; with more than FLAT partitions (K-means in two levels) the search still finds what
exact search finds."""

from __future__ import annotations

import numpy as np
import pytest

from curation.dedup.kernels import Products
from curation.dedup.partitions import places, rank, train
from curation.dedup.scale import SearchParams, exact_pairs, in_memory


def clustered(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((50, dim)).astype(np.float32)
    emb = rng.standard_normal((n, dim)).astype(np.float32) * 0.8 + centers[rng.integers(0, 50, n)]
    plants = rng.choice(n, n // 10, replace=False)
    emb[plants] = emb[rng.integers(0, n, len(plants))] + rng.standard_normal(
        (len(plants), dim)).astype(np.float32) * 0.5  # fmt: skip
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


@pytest.mark.parametrize("width, margin", [(1, 0.1), (3, 0.0), (4, 0.05), (8, 0.3), (12, 2.0)])
def test_a_rows_candidates_rank_best_first_then_the_nearest_within_the_margin(width, margin):
    rng = np.random.default_rng(width)
    sims = np.round(rng.uniform(-1, 1, (400, 12)), 1).astype(np.float32)  # many ties
    r, c = np.nonzero(sims > -2)
    order = rng.permutation(len(r))  # in no particular order
    r, slot, col, is_near = rank(r[order], c[order], sims[r, c][order], width, margin)
    for row in range(len(sims)):
        ranked = sorted(range(12), key=lambda k: (-sims[row, k], k))  # ties: the lower column
        want = [k for k in ranked if sims[row, k] >= sims[row, ranked[0]] - margin][:width]
        mine = r == row
        assert col[mine & (slot == 0)].tolist() == [want[0]]
        assert sorted(col[mine & is_near].tolist()) == sorted(want)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_places_in_any_precision_are_those_of_the_exact_similarities(dtype):
    emb = clustered(3000, dim=384)
    plan = train(emb, 60, 2, seed=0)
    ids, near = places(plan, emb, 6, 0.05, Products(None, dtype))
    exact = emb.astype(np.float64) @ plan.fine.astype(np.float64).T
    best = exact.argmax(axis=1)
    assert (ids[:, 0] == best).mean() > 0.999  # float32 rounding may swap a near tie
    within = exact >= exact[np.arange(len(emb)), best][:, None] - 0.05
    agree = [set(ids[k][near[k]].tolist()) == set(np.flatnonzero(within[k]).tolist())
             for k in range(len(emb)) if within[k].sum() <= 6]  # fmt: skip
    assert np.mean(agree) > 0.999
    f32 = places(plan, emb, 6, 0.05, Products(None, "float32"))
    np.testing.assert_array_equal(near, f32[1])  # ranked by the same recomputed similarities
    np.testing.assert_array_equal(np.where(near, ids, -1), np.where(f32[1], f32[0], -1))


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
