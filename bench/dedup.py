"""Benchmark: semantic de-duplication of 1,000,000 caption embeddings on this machine.

Synthetic data, built to look like caption embeddings (384-d, unit length, as MiniLM gives):
vectors gather around `--topics` topic directions (captions of similar scenes are similar, so
real embeddings cluster) and 5% of them are planted duplicates of another vector at a cosine
spread over 0.52-0.97, the range of real paraphrases of one caption (bench/dedup_quality.py),
so duplicates fall on both sides of the default threshold and near it. `--topics 0` gives
structureless Gaussian vectors, the worst case for partitioning.

Measured in one run:
- `curation.dedup.deduplicate` on all n vectors (partitioned search + grouping, every task in
  this process: the same code the dedup stage runs as Ray tasks): wall time and the process's
  peak resident memory (the n float32 vectors included);
- recall and precision of its duplicate pairs against exact brute force, on a subset
  (`--subset`, 50k; about half of it members of planted pairs, the rest random): pairs with
  both ends in the subset;
- beside it, naive exact all-pairs on that subset (blocked NumPy matrix products);
- the speed of the pair search's candidate products in float32 (NumPy) and bfloat16 (torch),
  the two precisions `dedup.search_dtype` chooses between, in this process's threads.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from curation.dedup.config import DedupConfig
from curation.dedup.groups import deduplicate
from curation.dedup.kernels import Products, native_bfloat16

THRESHOLD = DedupConfig().threshold


def synthesize(n: int, dim: int, topics: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings, and the (original, plant) row pairs that were planted.

    Vectors gather around topic directions with a within-topic cosine of about 0.25 (what
    different captions of one kind of scene score: bench/dedup_quality.py measures 0.05 for
    the median pair of different scenes and 0.30 at the 95th percentile); 5% are plants at a
    cosine drawn uniformly from 0.52-0.97 to their original, the range of real paraphrases of
    one caption, so the set has duplicates on both sides of the threshold and hard cases."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, dim), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    if topics:
        centers = rng.standard_normal((topics, dim), dtype=np.float32)
        centers /= np.linalg.norm(centers, axis=1, keepdims=True)
        emb += centers[rng.integers(0, topics, n)] * np.float32(0.58)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    source, plants = plant(emb, rng)
    order = rng.permutation(n)
    new_row = np.empty(n, np.int64)
    new_row[order] = np.arange(n)
    pairs = np.stack([new_row[source], new_row[plants]], axis=1)
    return emb[order], pairs


def plant(emb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Overwrite the last 5% of the rows with duplicates of earlier rows, each at a cosine
    drawn from 0.52-0.97 to its original; (original rows, planted rows)."""
    n, dim = emb.shape
    planted = n // 20
    source = rng.integers(0, n - planted, size=planted)
    cosine = rng.uniform(0.52, 0.97, size=(planted, 1)).astype(np.float32)
    noise = rng.standard_normal((planted, dim), dtype=np.float32)
    noise -= np.sum(noise * emb[source], axis=1, keepdims=True) * emb[source]  # orthogonal
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    emb[n - planted :] = emb[source] * cosine + noise * np.sqrt(1 - cosine**2)
    return source, np.arange(n - planted, n)


def product_rates(emb: np.ndarray, repeat: int = 20) -> dict[str, float]:
    """GFLOP/s of the pair search's candidate product (a block of 512 rows against 8192), in
    each precision the search can use on this machine (curation/dedup/kernels.py), on one
    thread: what a dedup task of one CPU gets."""
    import torch
    from threadpoolctl import threadpool_limits

    a, b = emb[:512], emb[512 : 512 + 8192]
    rates = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        for dtype in ("float32", "bfloat16"):
            rates[dtype] = _rate(Products(None, dtype), a, b, repeat)  # type: ignore[arg-type]
    torch.set_num_threads(threads)
    return rates


def _rate(products: Products, a: np.ndarray, b: np.ndarray, repeat: int) -> float:
    x, y = products.matrix(a), products.matrix(b)
    products.candidates(x, y, THRESHOLD)  # warm up
    started = time.perf_counter()
    for _ in range(repeat):
        products.candidates(x, y, THRESHOLD)
    seconds = (time.perf_counter() - started) / repeat
    return 2 * len(a) * len(b) * a.shape[1] / seconds / 1e9


def naive_pairs(emb: np.ndarray, threshold: float, block: int = 4096) -> set[tuple[int, int]]:
    pairs = set()
    for start in range(0, len(emb), block):
        sims = emb[start : start + block] @ emb.T
        rows, cols = np.nonzero(sims >= threshold)
        rows += start
        keep = cols > rows
        pairs.update(zip(rows[keep].tolist(), cols[keep].tolist(), strict=True))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--subset", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probes", type=int, default=DedupConfig().probes)
    parser.add_argument("--margin", type=float, default=DedupConfig().boundary_margin)
    args = parser.parse_args()

    started = time.perf_counter()
    emb, planted = synthesize(args.n, args.dim, args.topics, args.seed)
    print(f"synthesised {args.n} x {args.dim} embeddings in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    result = deduplicate(emb, THRESHOLD, probes=args.probes, boundary_margin=args.margin)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB

    # Half the subset is members of planted pairs (so it holds thousands of true pairs, and
    # their near-threshold siblings), half is drawn at random.
    rng = np.random.default_rng(args.seed + 1)
    size = min(args.subset, args.n)
    members = np.unique(planted[rng.permutation(len(planted))[: size // 4]])
    others = rng.permutation(args.n)
    others = others[~np.isin(others, members)][: size - len(members)]
    subset = np.sort(np.concatenate([members, others]))
    position = np.full(args.n, -1)
    position[subset] = np.arange(len(subset))
    i, j, _ = result.pairs  # the pairs deduplicate found, restricted to the subset
    inside = (position[i] >= 0) & (position[j] >= 0)
    found = set(zip(position[i[inside]].tolist(), position[j[inside]].tolist(), strict=True))
    found = {(min(a, b), max(a, b)) for a, b in found}

    sub = np.ascontiguousarray(emb[subset])
    started = time.perf_counter()
    truth = naive_pairs(sub, THRESHOLD)
    naive_s = time.perf_counter() - started
    hits = len(found & truth)
    recall = hits / len(truth) if truth else 1.0
    precision = hits / len(found) if found else 1.0

    print(f"\n{'measurement':<48} {'value':>14}")
    print(f"{'dedup of all ' + str(args.n) + ' (partitioned), wall s':<48} {wall:>14.2f}")
    print(f"{'  similar pairs found':<48} {len(result.pairs[0]):>14d}")
    print(f"{'  clips marked duplicate':<48} {int((~result.kept).sum()):>14d}")
    print(f"{'peak RSS of this process, GiB':<48} {peak / 2**30:>14.2f}")
    print(f"{'naive exact all-pairs on ' + str(len(subset)) + ', wall s':<48} {naive_s:>14.2f}")
    print(f"{'  exact pairs in subset':<48} {len(truth):>14d}")
    print(f"{'recall on subset':<48} {recall:>14.4f}")
    print(f"{'precision on subset':<48} {precision:>14.4f}")
    rates = product_rates(sub)
    native = "native" if native_bfloat16(None) else "not native"
    print(f"{'candidate products, float32, GFLOP/s a thread':<48} {rates['float32']:>14.1f}")
    print(f"{'  bfloat16 (' + native + '), GFLOP/s a thread':<48} "
          f"{rates['bfloat16']:>14.1f}")  # fmt: skip
    print("targets: wall <= 120 s, peak RSS <= 4 GiB, recall >= 0.99, precision >= 0.99")
    print(
        f"RESULT bench=dedup n={args.n} wall_s={wall:.3f} peak_rss_bytes={peak} "
        f"recall={recall:.4f} precision={precision:.4f} naive_subset_s={naive_s:.3f} "
        f"float32_gflops={rates['float32']:.1f} bfloat16_gflops={rates['bfloat16']:.1f}"
    )


if __name__ == "__main__":
    main()
