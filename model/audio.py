"""The audio tower: Whisper's encoder, frozen, then a 1-D average pool (kernel and stride 3).

16 kHz mono, 128 mel bins over a 30-s window → (1500, 1280) → 500 tokens of 60 ms each.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AudioEncoder(nn.Module):
    def __init__(self, whisper_encoder: nn.Module, pool: int = 3):
        super().__init__()
        self.model = whisper_encoder
        self.pool = pool

    @property
    def hidden_size(self) -> int:
        return self.model.config.d_model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, frames) log-mel features → (B, positions // pool, D)."""
        dtype = next(self.model.parameters()).dtype
        hidden = self.model(input_features=features.to(dtype)).last_hidden_state
        pooled = F.avg_pool1d(hidden.transpose(1, 2), kernel_size=self.pool, stride=self.pool)
        return pooled.transpose(1, 2)
