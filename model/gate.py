"""Instruction-driven fusion: BERT reads the instruction, a small MLP weighs the three branches.

The gate's width follows the LLM (3584 for 7B, 896 for the small model); the released code
hard-codes 3584. BERT itself is the separate `bert` part (frozen); the gate is only the MLP.
"""

from __future__ import annotations

import torch
from torch import nn


class InstructionGate(nn.Module):
    def __init__(self, text_dim: int, hidden_dim: int, branches: int = 3):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(text_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, branches)
        )

    def forward(self, cls_vector: torch.Tensor) -> torch.Tensor:
        """(B, text_dim) [CLS] vectors → (B, 3) branch weights that sum to one."""
        return torch.softmax(self.mlp(cls_vector).float(), dim=-1)


def fuse(branches: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """Per-sample weighted sum of aligned branch outputs, each (B, T, N, D); weights (B, 3)."""
    stacked = torch.stack(branches, dim=1)  # (B, 3, T, N, D)
    w = weights.to(stacked.dtype).view(*weights.shape, 1, 1, 1)
    return (stacked * w).sum(dim=1)
