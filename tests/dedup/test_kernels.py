"""The pair search's products (curation/dedup/kernels.py): bfloat16 finds every pair the
exact similarity keeps, so both precisions end with the same pairs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from curation.dedup.kernels import BFLOAT16_SLACK, Products, exact_similarity, native_bfloat16
from curation.dedup.scale import SearchParams, exact_pairs, in_memory


def near_threshold(n: int = 6000, dim: int = 384, seed: int = 0) -> np.ndarray:
    """Unit vectors (float16-exact, as stored), a third planted at cosines packed around 0.68."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    plants = np.arange(n // 3)
    source = rng.integers(n // 3, n, len(plants))
    cosine = rng.uniform(0.66, 0.70, (len(plants), 1)).astype(np.float32)
    noise = rng.standard_normal((len(plants), dim)).astype(np.float32)
    noise -= np.sum(noise * emb[source], axis=1, keepdims=True) * emb[source]
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    emb[plants] = emb[source] * cosine + noise * np.sqrt(1 - cosine**2)
    return emb.astype(np.float16).astype(np.float32)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_candidates_hold_every_pair_at_or_above_the_bound(dtype):
    emb = near_threshold()
    a, b = emb[:1000], emb[1000:]
    r, c = Products(None, dtype).candidates(a, b, 0.68)
    exact = np.einsum("ij,kj->ik", a.astype(np.float64), b.astype(np.float64))
    want = set(zip(*np.nonzero(exact >= 0.68), strict=True))
    got = set(zip(r.tolist(), c.tolist(), strict=True))
    assert len(want) > 300 and want <= got
    slack = BFLOAT16_SLACK if dtype == "bfloat16" else 1e-3
    assert exact[r, c].min() >= 0.68 - 2 * slack  # candidates only just below it


def test_both_precisions_end_with_the_same_pairs():
    emb = near_threshold()
    f32 = exact_pairs(emb, 0.68, Products(None, "float32"))
    bf16 = exact_pairs(emb, 0.68, Products(None, "bfloat16"))
    assert len(f32[0]) > 500
    for x, y in zip(f32, bf16, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(f32[2], exact_similarity(emb, f32[0], f32[1]))
    params = SearchParams(threshold=0.68, exact_max=1000, partition_size=300, boundary_margin=0.12,
                          probes=16, coarse_size=3000, train_sample=1000)  # fmt: skip
    searched = [in_memory(emb, dataclasses.replace(params, search_dtype=d))
                for d in ("float32", "bfloat16")]  # fmt: skip
    for x, y in zip(*searched, strict=True):
        np.testing.assert_array_equal(x, y)


def test_auto_takes_bfloat16_only_where_it_is_native():
    auto = Products.on(None, "auto")
    assert auto.dtype == ("bfloat16" if native_bfloat16(None) else "float32")
    assert Products.on(None, "float32").dtype == "float32"
