"""Keyframes and motion of a frame sequence, computed while the scene detector runs.

A keyframe is a frame whose content differs from the previous keyframe by more than a
threshold: more than `threshold` (a fraction) of a small grey thumbnail's pixels changed by more
than `pixel_delta` grey levels. The first frame of every scene is a keyframe. Motion of a frame
is its mean absolute grey-level difference (0-255) to the frame before it in the same scene. The paper filters clips on keyframe counts; motion statistics are recorded so
the thresholds can be tuned afterwards.

Detectors report a cut a few frames late (AdaptiveDetector looks `window_width` frames ahead),
so frames are analysed with a delay of `delay` frames: by the time frame i is analysed, every
cut at or before i is known. A cut reported later than that (ThresholdDetector places fade
cuts in the past) still marks its frame as a scene start, without re-chaining the keyframes
after it.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np


class KeyframeTracker:
    def __init__(self, *, threshold: float, pixel_delta: int, thumb_width: int, delay: int):
        self.threshold = threshold
        self.pixel_delta = pixel_delta
        self.thumb_width = thumb_width
        self.delay = max(0, delay)
        self.cuts: set[int] = set()
        self.keyframe: list[bool] = []
        self.motion: list[float] = []
        self._pending: deque[tuple[int, np.ndarray]] = deque()
        self._last_key: np.ndarray | None = None
        self._prev: np.ndarray | None = None

    def thumbnail(self, frame_bgr: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        h, w = grey.shape
        tw = min(self.thumb_width, w)
        th = max(1, round(h * tw / w))
        return cv2.resize(grey, (tw, th), interpolation=cv2.INTER_AREA).astype(np.int16)

    def add_cuts(self, frames: list[int]) -> None:
        for c in frames:
            self.cuts.add(c)
            if c < len(self.keyframe):  # reported after its frame was analysed
                self.keyframe[c] = True
                self.motion[c] = 0.0

    def push(self, index: int, frame_bgr: np.ndarray) -> None:
        self._pending.append((index, self.thumbnail(frame_bgr)))
        while len(self._pending) > self.delay:
            self._analyse(*self._pending.popleft())

    def finish(self) -> None:
        while self._pending:
            self._analyse(*self._pending.popleft())

    def _analyse(self, index: int, thumb: np.ndarray) -> None:
        scene_start = index == 0 or index in self.cuts
        if scene_start or self._last_key is None:
            is_key, motion = True, 0.0
        else:
            changed = np.abs(thumb - self._last_key) > self.pixel_delta
            is_key = float(np.mean(changed)) > self.threshold
            motion = float(np.mean(np.abs(thumb - self._prev)))
        if is_key:
            self._last_key = thumb
        self._prev = thumb
        self.keyframe.append(is_key)
        self.motion.append(motion)

    def window_stats(self, start: int, end: int) -> tuple[int, float, float]:
        """(keyframes, motion mean, motion max) of frames [start, end); start counts as a key."""
        keys = sum(self.keyframe[start:end]) + (0 if self.keyframe[start] else 1)
        inner = self.motion[start + 1 : end]
        if not inner:
            return keys, 0.0, 0.0
        return keys, float(np.mean(inner)), float(np.max(inner))
