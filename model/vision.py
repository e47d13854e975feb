"""The vision tower: SigLIP, frozen; features from the penultimate layer, every patch token."""

from __future__ import annotations

import torch
from torch import nn


class VisionTower(nn.Module):
    def __init__(self, siglip: nn.Module, feature_layer: int = -2):
        super().__init__()
        self.model = siglip
        self.feature_layer = feature_layer

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def image_size(self) -> int:
        return self.model.config.image_size

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, S, S) frames → (B, T, P, Dv) patch features (SigLIP has no CLS token)."""
        b, t = pixel_values.shape[:2]
        dtype = next(self.model.parameters()).dtype
        out = self.model(
            pixel_values=pixel_values.flatten(0, 1).to(dtype), output_hidden_states=True
        )
        features = out.hidden_states[self.feature_layer]
        return features.reshape(b, t, *features.shape[1:])
