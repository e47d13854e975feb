"""Uniform frame sampling from a clip file or a virtual clip (source + time range).

One ffmpeg run per clip decodes only the clip's range (input seeking), shrinks frames so the
longer side is at most `max_side`, and the frames at HumanOmni's uniform positions are kept:
index i = round(seg * (i + 0.5)) with seg = (frames - 1) / n, halves rounded up as the release
does (`np.round(x + 1e-6)`; Python's `round` takes halves to even and picks other, repeated
frames, e.g. 32 of 33). A clip with fewer frames than asked repeats frames, as the release
does for video files. Every backend uses this, so a clip is read once whatever model looks
at it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from curation.media.ffmpeg import FrameStream
from curation.storage import local_copy

JPEG_QUALITY = 90


def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """An RGB uint8 frame as JPEG: how frames travel from CPU workers to model workers."""
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """A JPEG as an RGB uint8 frame."""
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise ValueError("not a JPEG image")
    return np.ascontiguousarray(frame[:, :, ::-1])


def uniform_indices(total: int, n: int) -> list[int]:
    if total <= 0:
        return []
    seg = (total - 1) / n
    return [min(total - 1, int(np.round(seg * (i + 0.5) + 1e-6))) for i in range(n)]


def sample_frames(
    path: str,
    *,
    width: int,
    height: int,
    n: int,
    max_side: int,
    start_s: float | None = None,
    end_s: float | None = None,
    timeout_s: float = 600.0,
) -> tuple[list[np.ndarray], list[int]]:
    """`n` RGB uint8 frames spread evenly over [start_s, end_s) (the whole file when None),
    with the index of each among the decoded frames."""
    scale = min(1.0, max_side / max(width, height))
    w, h = max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
    stream = FrameStream(path, w, h, "area", timeout_s, start_s=start_s, end_s=end_s)
    frames = [f[:, :, ::-1].copy() for f in stream]  # BGR -> RGB
    if not frames:
        raise RuntimeError(f"no frame decoded from {path}: {stream.error or 'empty range'}")
    picked = uniform_indices(len(frames), n)
    return [frames[i] for i in picked], picked


def clip_frames(
    clip: dict[str, Any], n: int, max_side: int
) -> tuple[list[np.ndarray], list[float]]:
    """Frames of a clip row (its file, or its range of the source when virtual) and their
    approximate times in the clip (decoded index / fps). A file in an object store is
    fetched to a temporary file first."""
    common = {"width": clip["display_width"], "height": clip["display_height"], "n": n,
              "max_side": max_side}  # fmt: skip
    if clip.get("clip_path"):
        with local_copy(clip["clip_path"]) as path:
            frames, picked = sample_frames(path, **common)
    else:
        offset = clip.get("video_start_s") or 0.0
        with local_copy(clip["path"]) as path:
            frames, picked = sample_frames(
                path, start_s=offset + clip["start_s"], end_s=offset + clip["end_s"], **common
            )
    fps = clip.get("fps") or 25.0
    return frames, [i / fps for i in picked]


def iter_clip_frames(
    clip: dict[str, Any], max_side: int, max_fps: float, timeout_s: float = 600.0
) -> Iterator[tuple[float, np.ndarray]]:
    """Every frame of a clip row, or every k-th so that at most `max_fps` are kept, as
    (time in the clip, RGB frame), decoded as they are used (a long clip never sits in memory)."""
    width, height = clip["display_width"], clip["display_height"]
    scale = min(1.0, max_side / max(width, height))
    w, h = max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
    fps = clip.get("fps") or 25.0
    step = max(1, round(fps / max_fps))
    if clip.get("clip_path"):
        location, window = clip["clip_path"], {}
    else:
        offset = clip.get("video_start_s") or 0.0
        location = clip["path"]
        window = {"start_s": offset + clip["start_s"], "end_s": offset + clip["end_s"]}
    with local_copy(location) as path:
        stream = FrameStream(path, w, h, "area", timeout_s, **window)
        for i, frame in enumerate(stream):
            if i % step == 0:
                yield i / fps, frame[:, :, ::-1].copy()
        if stream.error and not stream.frames:
            raise RuntimeError(f"no frame decoded from {path}: {stream.error}")


def clip_jpegs(clip: dict[str, Any], n: int, max_side: int) -> list[bytes]:
    """`n` frames of a clip row, JPEG-encoded: what a model prompt carries."""
    return [encode_jpeg(f) for f in clip_frames(clip, n, max_side)[0]]
