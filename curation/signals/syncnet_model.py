"""SyncNet (Chung & Zisserman, "Out of time: automated lip sync in the wild", 2016), the
network of its public release (joonson/syncnet_python, model "S"), so its released weights
(`syncnet_v2.model`, a state dict) load by name.

Two towers map 0.2 s of each side to 1024-d embeddings that are close when in sync:
- audio: 13 MFCCs x 20 steps (100 Hz) -> 2-D convolutions -> 512 -> 1024;
- lips: 5 frames (25 fps) of a 224x224 BGR face crop, values 0..255 -> 3-D convolutions ->
  512 -> 1024.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv2(
    cin: int, cout: int, kernel: tuple[int, int], padding: tuple[int, int]
) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, kernel, padding=padding),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


def _conv3(
    cin: int,
    cout: int,
    kernel: tuple[int, int, int],
    stride: tuple[int, int, int] = (1, 1, 1),
    padding: tuple[int, int, int] = (0, 0, 0),
) -> list[nn.Module]:
    return [nn.Conv3d(cin, cout, kernel, stride=stride, padding=padding), nn.BatchNorm3d(cout),
            nn.ReLU(inplace=True)]  # fmt: skip


def _head(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, width))


class SyncNet(nn.Module):
    """Module names and order follow the release, so its state dict loads unchanged."""

    def __init__(self, embedding: int = 1024):
        super().__init__()
        self.netcnnaud = nn.Sequential(
            *_conv2(1, 64, (3, 3), (1, 1)), nn.MaxPool2d((1, 1), (1, 1)),
            *_conv2(64, 192, (3, 3), (1, 1)), nn.MaxPool2d((3, 3), (1, 2)),
            *_conv2(192, 384, (3, 3), (1, 1)),
            *_conv2(384, 256, (3, 3), (1, 1)),
            *_conv2(256, 256, (3, 3), (1, 1)), nn.MaxPool2d((3, 3), (2, 2)),
            *_conv2(256, 512, (5, 4), (0, 0)),
        )  # fmt: skip
        self.netfcaud = _head(embedding)
        self.netfclip = _head(embedding)
        self.netcnnlip = nn.Sequential(
            *_conv3(3, 96, (5, 7, 7), (1, 2, 2)), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *_conv3(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            *_conv3(256, 256, (1, 3, 3), padding=(0, 1, 1)),
            *_conv3(256, 256, (1, 3, 3), padding=(0, 1, 1)),
            *_conv3(256, 256, (1, 3, 3), padding=(0, 1, 1)), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *_conv3(256, 512, (1, 6, 6)),
        )  # fmt: skip

    def audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        """(N, 1, 13, 20) MFCC windows -> (N, embedding)."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def lips(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, 5, 224, 224) BGR face crops, 0..255 -> (N, embedding)."""
        return self.netfclip(self.netcnnlip(frames).flatten(1))
