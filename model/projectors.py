"""Projectors from vision/audio features to the LLM's width.

`mlp2x_gelu` is the released model's "MLP2xGeLU" (Linear → GELU → Linear), used by the face
projector, the audio projector and the STC readout. The face projector keeps the frame's grid
and resizes it so the face branch yields as many tokens a frame as the STC branches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mlp2x_gelu(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))


def pooled_grid(grid: int) -> int:
    """Side of the token grid after the STC sampler (kernel 2, stride 2, padding 1): 27 → 14."""
    return grid // 2 + 1


class FaceProjector(nn.Module):
    """MLP on every patch token, then a bilinear resize of the grid to the STC branches' size."""

    def __init__(self, vision_dim: int, llm_dim: int):
        super().__init__()
        self.mlp = mlp2x_gelu(vision_dim, llm_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, P, Dv) patch features → (B, T, p·p, D) with p = pooled_grid(√P)."""
        b, t, p, _ = features.shape
        grid = int(round(p**0.5))
        x = self.mlp(features)  # (B, T, P, D)
        x = x.reshape(b * t, grid, grid, -1).permute(0, 3, 1, 2)
        side = pooled_grid(grid)
        x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
        return x.flatten(2).transpose(1, 2).reshape(b, t, side * side, -1)


class AudioProjector(nn.Module):
    def __init__(self, audio_dim: int, llm_dim: int):
        super().__init__()
        self.mlp = mlp2x_gelu(audio_dim, llm_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(features)
