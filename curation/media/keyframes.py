"""Keyframes and the dynamics of a frame sequence, computed while the scene detector runs.

Every frame is shrunk to a grey image `width` pixels wide (area averaging: compression noise
averages out) and compared with the last keyframe and with the frame before it:

- a *keyframe*: on a `grid` x `grid` raster, some cell has more than `cell_share` of its
  pixels changed by more than `pixel_delta` grey levels since the last keyframe. A person who
  fills a small part of a wide shot moves within a few cells, which a whole-frame share never
  sees (a signer a third of the frame high: 10 keyframes in 3.6 s); a still changes in none.
- a *flash*: the mean brightness jumps by more than `flash_delta` levels (strobes, flashes).
- a *jump*: after the best global shift of up to an eighth of the frame (a pan, a shake), more
  than `jump_share` of the pixels still changed by `pixel_delta` (a cut the detector missed);
  people walking change where they are, not the whole frame. A cut the detector found inside
  a window (a montage of shots too short to keep, see stages/scenes.py) is a jump too.
- *flicker*: change that undoes itself. Consecutive frame differences of moving things point
  the same way (correlation >= 0: a pan scores +0.46); of temporal noise, a strobe or blocking
  that comes and goes they cancel (white noise: correlation -0.5). Flicker is minus the mean
  correlation of consecutive differences, 0 when they agree.

The first frame of every scene is a keyframe. Motion of a frame is its mean absolute grey-level
difference (0-255) to the frame before it in the same scene.

Detectors report a cut a few frames late (AdaptiveDetector looks `window_width` frames ahead),
so frames are analysed with a delay of `delay` frames: by the time frame i is analysed, every
cut at or before i is known. A cut reported later than that (ThresholdDetector places fade
cuts in the past) still marks its frame as a scene start, without re-chaining the keyframes
after it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

# Below this share of pixels changed by pixel_delta, a frame difference is too small for its
# direction to mean anything (flicker is not judged on it).
_MIN_CHANGE = 0.01


@dataclass(frozen=True)
class Dynamics:
    """What a window of frames [start, end) did."""

    keyframes: int
    motion_mean: float
    motion_max: float
    flashes: int
    jumps: int
    flicker: float  # 0 when consecutive changes agree or nothing changed; 0.5: white noise


@dataclass
class _Frame:
    key: bool
    motion: float = 0.0
    flash: bool = False
    jump: bool = False
    turn: float | None = None  # correlation of this frame's difference with the previous one


class KeyframeTracker:
    def __init__(
        self,
        *,
        width: int,
        grid: int,
        pixel_delta: int,
        cell_share: float,
        flash_delta: float,
        jump_share: float,
        delay: int,
    ):
        self.width, self.grid, self.pixel_delta = width, grid, pixel_delta
        self.cell_share, self.flash_delta, self.jump_share = cell_share, flash_delta, jump_share
        self.delay = max(0, delay)
        self.cuts: set[int] = set()
        self.frames: list[_Frame] = []
        self._pending: deque[tuple[int, np.ndarray]] = deque()
        self._last_key: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._prev_diff: np.ndarray | None = None

    def shrink(self, frame_bgr: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        h, w = grey.shape
        tw = min(self.width, w)
        th = max(self.grid, round(h * tw / w))
        return cv2.resize(grey, (tw, th), interpolation=cv2.INTER_AREA).astype(np.float32)

    def add_cuts(self, frames: list[int]) -> None:
        for c in frames:
            self.cuts.add(c)
            if 0 < c < len(self.frames):  # reported after its frame was analysed
                self.frames[c] = _Frame(key=True, jump=True)

    def push(self, index: int, frame_bgr: np.ndarray) -> None:
        self._pending.append((index, self.shrink(frame_bgr)))
        while len(self._pending) > self.delay:
            self._analyse(*self._pending.popleft())

    def finish(self) -> None:
        while self._pending:
            self._analyse(*self._pending.popleft())

    def _cell_change(self, a: np.ndarray, b: np.ndarray) -> float:
        """The largest share of changed pixels in any cell of the grid."""
        changed = (np.abs(a - b) > self.pixel_delta).astype(np.float32)
        cells = cv2.resize(changed, (self.grid, self.grid), interpolation=cv2.INTER_AREA)
        return float(cells.max())

    def _aligned_change(self, a: np.ndarray, b: np.ndarray) -> float:
        """Share of pixels that changed after undoing the best global shift from b to a."""
        (dx, dy), _ = cv2.phaseCorrelate(b, a)
        h, w = a.shape
        limit = max(h, w) / 8
        dx, dy = float(np.clip(dx, -limit, limit)), float(np.clip(dy, -limit, limit))
        shifted = cv2.warpAffine(b, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h),
                                 borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        mx, my = int(np.ceil(abs(dx))), int(np.ceil(abs(dy)))  # the edges a shift uncovers
        diff = np.abs(a - shifted)[my : h - my or None, mx : w - mx or None]
        return float(np.mean(diff > self.pixel_delta)) if diff.size else 0.0

    def _turn(self, diff: np.ndarray) -> float | None:
        """Correlation of this difference with the previous one; None when too small."""
        prev = self._prev_diff
        if prev is None or prev.shape != diff.shape:
            return None
        big = self.pixel_delta
        if max(np.mean(np.abs(diff) > big), np.mean(np.abs(prev) > big)) < _MIN_CHANGE:
            return None
        a, b = diff - diff.mean(), prev - prev.mean()
        norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
        return float((a * b).sum() / norm) if norm > 0 else None

    def _analyse(self, index: int, img: np.ndarray) -> None:
        scene_start = index == 0 or index in self.cuts
        if scene_start or self._last_key is None or self._prev is None:
            frame = _Frame(key=True, jump=index > 0)
            self._prev_diff = None
        else:
            prev = self._prev
            diff = img - prev
            frame = _Frame(
                key=self._cell_change(img, self._last_key) > self.cell_share,
                motion=float(np.mean(np.abs(diff))),
                flash=abs(float(img.mean()) - float(prev.mean())) > self.flash_delta,
                # No shift is among the shifts tried: align only when the frame changed whole.
                jump=float(np.mean(np.abs(diff) > self.pixel_delta)) > self.jump_share
                and self._aligned_change(img, prev) > self.jump_share,
                turn=self._turn(diff),
            )
            self._prev_diff = diff
        if frame.key:
            self._last_key = img
        self._prev = img
        self.frames.append(frame)

    def window(self, start: int, end: int) -> Dynamics:
        """What frames [start, end) did; the window's first frame counts as a keyframe."""
        frames = self.frames[start:end]
        keys = sum(f.key for f in frames) + (0 if frames and frames[0].key else 1)
        inner = frames[1:]
        if not inner:
            return Dynamics(keys, 0.0, 0.0, 0, 0, 0.0)
        motion = [f.motion for f in inner]
        turns = [f.turn for f in inner if f.turn is not None]
        return Dynamics(
            keyframes=keys,
            motion_mean=float(np.mean(motion)),
            motion_max=float(np.max(motion)),
            flashes=sum(f.flash for f in inner),
            jumps=sum(f.jump for f in inner),
            flicker=max(0.0, -float(np.mean(turns))) if turns else 0.0,
        )
