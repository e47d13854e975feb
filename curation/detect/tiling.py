"""Any detector on overlapping tiles of a frame as well as on the whole of it.

Detectors look at a fixed input size (BlazeFace 192 px, SSDLite 300 px), so a face of 30 px
in a 1920-pixel frame is a few pixels by the time the network sees it. With `tile` set, the
frame is also cut into tiles of that side, overlapping by a quarter (a face up to a quarter
of a tile lies whole in one of them), each tile is detected on its own, and the boxes of all
of them are merged: a box that overlaps a higher-scoring one (IoU >= 0.4, or 80% inside it)
is the same object found twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from curation.detect.base import Detection, Detector, DetectorConfig

OVERLAP = 0.25
SAME_IOU = 0.4  # two boxes overlapping this much are one object...
SAME_INSIDE = 0.8  # ...as is a box lying mostly inside another (a face cut by a tile's edge)


def same_object(a: Detection, b: Detection) -> bool:
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    if not inter:
        return False
    return (
        inter / (a.area + b.area - inter) >= SAME_IOU or inter / min(a.area, b.area) >= SAME_INSIDE
    )


def merge(found: list[Detection]) -> list[Detection]:
    """Each object once: its highest-scoring box."""
    kept: list[Detection] = []
    for d in sorted(found, key=lambda d: -d.score):
        if not any(same_object(d, k) for k in kept):
            kept.append(d)
    return kept


def tiles(width: int, height: int, side: int) -> list[tuple[int, int, int, int]]:
    """(x1, y1, x2, y2) of overlapping tiles covering the frame (none if it fits one tile)."""
    if width <= side and height <= side:
        return []
    step = max(1, int(side * (1 - OVERLAP)))

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        out = list(range(0, length - side, step))
        return [*out, length - side]

    return [(x, y, min(width, x + side), min(height, y + side))
            for y in starts(height) for x in starts(width)]  # fmt: skip


@dataclass
class Tiled:
    inner: Detector
    side: int
    uses_gpu: ClassVar[bool] = False  # set per instance from the inner detector below

    def __post_init__(self) -> None:
        self.uses_gpu = self.inner.uses_gpu  # type: ignore[misc]

    @property
    def config(self) -> DetectorConfig:
        return self.inner.config

    def setup(self, device: str = "cpu") -> None:
        self.inner.setup(device)

    def detect(self, frame: np.ndarray) -> list[Detection]:
        found = list(self.inner.detect(frame))
        h, w = frame.shape[:2]
        for x1, y1, x2, y2 in tiles(w, h, self.side):
            for d in self.inner.detect(np.ascontiguousarray(frame[y1:y2, x1:x2])):
                found.append(Detection(d.cls, d.x1 + x1, d.y1 + y1, d.x2 + x1, d.y2 + y1, d.score))
        return merge(found)
