"""The matrix products of the pair search (scale.py, partitions.py).

Products only *find* candidate pairs: every pair kept has its similarity recomputed row by
row (`exact_similarity`, the same on every machine), so a faster, rougher product loses
nothing as long as it searches low enough. Two precisions:

- **float32**: NumPy (BLAS) on the CPU, or torch on the tasks' GPU. Blocked products may
  differ from the row-by-row similarity in the last bits: it searches `FLOAT32_SLACK` low.
- **bfloat16**: torch, where the hardware multiplies it natively (CPUs with AVX512-BF16 or
  AMX, GPUs since Ampere): ~1.8× float32's speed a thread here (bench/dedup.py). Rounding a unit
  vector's components to bfloat16 (8 significant bits, unit roundoff u = 2^-8) moves an
  inner product of two by at most (2u + u^2)·|x||y| < 0.0079, and rounding the product itself
  by u·|s| <= 0.0039 (float32 accumulation adds ~1e-5), so searching `BFLOAT16_SLACK` = 0.0125
  low finds every pair the exact similarity keeps.

`search_dtype: auto` takes bfloat16 where it is native on the machine a task runs on, else
float32; the pairs kept are the same either way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

FLOAT32_SLACK = 1e-4
BFLOAT16_SLACK = 0.0125

SearchDtype = Literal["auto", "float32", "bfloat16"]


@dataclass(frozen=True)
class Products:
    """Where and in what precision candidate pairs are found."""

    device: str | None = None  # a torch device ("cuda"); None: this machine's CPU
    dtype: Literal["float32", "bfloat16"] = "float32"

    @classmethod
    def on(cls, device: str | None, dtype: SearchDtype) -> Products:
        """`dtype` "auto": bfloat16 where this machine (or its GPU) multiplies it natively."""
        if dtype == "auto":
            dtype = "bfloat16" if native_bfloat16(device) else "float32"
        return cls(device, dtype)

    @property
    def rows(self) -> int:
        """Query rows a product: a few hundred keep a CPU's products in cache."""
        return 512 if self.device is None else 8192

    def near_best(self, a: Any, b: Any, margin: float) -> tuple[np.ndarray, np.ndarray]:
        """(row of a, row of b) for every b whose exact inner product with a row of a is
        within `margin` of that row's best, and a few more (a and b from `matrix`)."""
        if isinstance(a, np.ndarray):
            s = a @ b.T
            floor = s.max(axis=1) - (margin + 2 * FLOAT32_SLACK)
            return np.nonzero(s >= floor[:, None])
        import torch

        s = a @ b.T
        floor = s.amax(dim=1).float() - (margin + 2 * self.slack)  # in float32, not rounded
        r, c = torch.nonzero(s >= floor[:, None], as_tuple=True)
        return r.cpu().numpy(), c.cpu().numpy()

    @property
    def slack(self) -> float:
        """How far a product may be from the exact inner product."""
        return BFLOAT16_SLACK if self.dtype == "bfloat16" else FLOAT32_SLACK

    def matrix(self, x: np.ndarray) -> Any:
        """Rows (float16 or float32) as `candidates` multiplies them: convert once, slice often."""
        if self.device is None and self.dtype == "float32":
            return x.astype(np.float32, copy=False)
        import torch

        kind = torch.bfloat16 if self.dtype == "bfloat16" else torch.float32
        x = np.require(x, requirements=["C", "W"])  # a copy of a read-only (Ray) array only
        return torch.from_numpy(x).to(self.device or "cpu", kind)

    def candidates(self, a: Any, b: Any, low: float) -> tuple[np.ndarray, np.ndarray]:
        """(row of a, row of b) of every pair whose exact inner product is >= low, and a few
        just below it (by the slack of the precision); a and b from `matrix`."""
        if isinstance(a, np.ndarray):
            s = a @ b.T
            floor = low - FLOAT32_SLACK
            hit = np.flatnonzero(s.max(axis=1) >= floor)  # few rows hold any: skip the rest
            r, c = np.nonzero(s[hit] >= floor)
            return hit[r], c
        import torch

        s = a @ b.T
        floor = low - self.slack
        hit = torch.nonzero(s.amax(dim=1) >= floor).squeeze(1)
        r, c = torch.nonzero(s[hit] >= floor, as_tuple=True)
        return hit[r].cpu().numpy(), c.cpu().numpy()


@functools.cache
def native_bfloat16(device: str | None) -> bool:
    """Whether bfloat16 products are native here: the GPU's, or this CPU's (AVX512-BF16, AMX)."""
    if device is not None:
        import torch

        kind = torch.device(device).type
        if kind != "cpu":
            return kind == "cuda" and torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: float32, which is always right
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def exact_similarity(
    emb: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 65536
) -> np.ndarray:
    """Inner products of rows a[k], b[k] in float32, the same on every machine (no BLAS)."""
    out = np.empty(len(a), np.float32)
    for s in range(0, len(a), chunk):
        x = emb[a[s : s + chunk]].astype(np.float32, copy=False)
        y = emb[b[s : s + chunk]].astype(np.float32, copy=False)
        out[s : s + chunk] = np.einsum("ij,ij->i", x, y)
    return out
