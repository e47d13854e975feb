"""The body and interaction branches: VideoLLaMA2's STC connector as HumanOmni modified it.

RegNet stage on every frame (Dv → D) → Conv3d sampler over (time, height, width) with stride
(1, 2, 2) and padding 1, whose extra last time slice is dropped so T is kept → RegNet stage
(D → D) → readout MLP. A 27×27 SigLIP grid becomes 14×14 tokens a frame, 32 frames stay 32.
"""

from __future__ import annotations

from functools import partial

import torch
from timm.layers import LayerNorm2d
from timm.models.regnet import RegStage
from torch import nn

from model.projectors import mlp2x_gelu

# Bottleneck ratio 1, group size 1 (depthwise 3×3) and squeeze-excite 0.25 are RegStage's defaults.
_reg_stage = partial(RegStage, stride=1, dilation=1, act_layer=nn.SiLU, norm_layer=LayerNorm2d)


class STCProjector(nn.Module):
    def __init__(self, vision_dim: int, llm_dim: int, depth: int):
        super().__init__()
        self.s1 = _reg_stage(depth, vision_dim, llm_dim)
        self.sampler = nn.Sequential(
            nn.Conv3d(llm_dim, llm_dim, kernel_size=2, stride=(1, 2, 2), padding=1, bias=True),
            nn.SiLU(),
        )
        self.s2 = _reg_stage(depth, llm_dim, llm_dim)
        self.readout = mlp2x_gelu(llm_dim, llm_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, P, Dv) patch features → (B, T, p·p, D)."""
        b, t, p, dv = features.shape
        grid = int(round(p**0.5))
        x = features.reshape(b * t, grid, grid, dv).permute(0, 3, 1, 2)
        x = self.s1(x)  # (B·T, D, g, g)
        d = x.shape[1]
        x = x.reshape(b, t, d, grid, grid).transpose(1, 2)  # (B, D, T, g, g)
        x = self.sampler(x)[:, :, :t]  # padding adds a time slice: drop it so T is kept
        side = x.shape[-1]
        x = x.transpose(1, 2).reshape(b * t, d, side, side)
        x = self.s2(x)
        x = x.flatten(2).transpose(1, 2).reshape(b, t, side * side, d)
        return self.readout(x)
