"""Slow-fast token compression of the fused visual tokens (parameter-free).

Fast path: a 2×2 average pool of every frame's grid (14×14 → 7×7, all 32 frames = 1568 tokens).
Slow path: every token of every 4th frame starting at the second (0-based frames 1, 5, 9, …,
as the released model takes them; frame 0 alone when a clip has one frame) = 8 × 196 = 1568.
Together 3136 tokens a 32-frame clip instead of 6272.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SlowFastCompressor(nn.Module):
    def __init__(self, frame_stride: int = 4, pool: int = 2):
        super().__init__()
        self.frame_stride = frame_stride
        self.pool = pool

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, p·p, D) → (B, fast + slow tokens, D)."""
        b, t, n, d = tokens.shape
        side = int(round(n**0.5))
        grid = tokens.reshape(b * t, side, side, d).permute(0, 3, 1, 2)
        fast = F.avg_pool2d(grid, self.pool).flatten(2).transpose(1, 2).reshape(b, -1, d)
        slow = tokens[:, 1 :: self.frame_stride] if t > 1 else tokens[:, :1]
        slow = slow.reshape(b, -1, d)
        return torch.cat([fast, slow], dim=1)


def flatten_frames(tokens: torch.Tensor) -> torch.Tensor:
    """Without compression the LLM sees every token of every frame: (B, T, N, D) → (B, T·N, D)."""
    return tokens.reshape(tokens.shape[0], -1, tokens.shape[-1])
