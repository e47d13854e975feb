"""Face crops for the face branch, from the face boxes curation found (`data.face_crops`).

A clip's face track is what the exports carry as `face_track`: for each frame the boxes stage
sampled, `[t_s, nx1, ny1, nx2, ny2]` of its largest face, in coordinates divided by the
displayed width and height. Each frame the model sees is cropped around the track's box
nearest to it in time: a square of the box's longer side plus `margin` on every side, moved
(not shrunk) to stay inside the frame. Frames farther than `max_gap_s` from every box keep
the whole frame (the face branch then sees what the others see, as in the release).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MARGIN = 0.25
MAX_GAP_S = 1.0


def crop_box(
    box: Sequence[float], width: int, height: int, margin: float = MARGIN
) -> tuple[int, int, int, int]:
    """Pixel bounds (x0, y0, x1, y1) of the square crop around a normalised box."""
    nx1, ny1, nx2, ny2 = box
    cx, cy = (nx1 + nx2) / 2 * width, (ny1 + ny2) / 2 * height
    side = max((nx2 - nx1) * width, (ny2 - ny1) * height) * (1 + 2 * margin)
    side = int(round(min(max(side, 2.0), width, height)))
    x0 = int(round(min(max(cx - side / 2, 0), width - side)))
    y0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return x0, y0, x0 + side, y0 + side


def nearest_box(
    track: Sequence[Sequence[float]], t_s: float, max_gap_s: float = MAX_GAP_S
) -> Sequence[float] | None:
    """The box of the track entry nearest to `t_s`, or None when every one is too far."""
    if not track:
        return None
    entry = min(track, key=lambda e: abs(e[0] - t_s))
    return entry[1:5] if abs(entry[0] - t_s) <= max_gap_s else None


def face_crops(
    frames: np.ndarray, times_s: Sequence[float], track: Sequence[Sequence[float]]
) -> list[np.ndarray]:
    """One crop (or the whole frame) per frame of (T, H, W, 3); crops differ in size."""
    height, width = frames.shape[1:3]
    out = []
    for frame, t in zip(frames, times_s, strict=True):
        box = nearest_box(track, t)
        if box is None:
            out.append(frame)
            continue
        x0, y0, x1, y1 = crop_box(box, width, height)
        out.append(frame[y0:y1, x0:x1])
    return out
