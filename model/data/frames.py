"""Video frames for the vision tower: HumanOmni's uniform sampling and one shared preprocessing.

Decoding reuses curation's ffmpeg plumbing (probe for the displayed size, `FrameStream` for the
frames), so rotation and anamorphic pixels are handled the same way as in curation.
`preprocess_frames` is the only way frames become pixel values, in training and in inference:
the released code pads frames to a square in training but not at inference (a defect).
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from curation.media.ffmpeg import FrameStream, ProbeError, parse_probe, run_ffprobe
from curation.media.frames import uniform_indices
from model.data.errors import SampleError, missing

# SigLIP's normalisation (its image processor's image_mean / image_std).
SIGLIP_MEAN = 0.5
SIGLIP_STD = 0.5


def uniform_frame_indices(n_frames: int, num_frames: int) -> list[int]:
    """Indices of the frames to keep: round(seg·(i+0.5)) with seg = (N−1)/num_frames, halves
    rounded up, as the release samples (curation.media.frames.uniform_indices). A clip shorter
    than `num_frames` repeats frames, as the release does for video files (it pads with black
    frames only for GIFs)."""
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    return uniform_indices(n_frames, num_frames)


def _decode_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """Shrink (never enlarge) so the shorter side is `short_side`: every decoded frame is held
    in memory until the count is known, and the final resize only needs that much detail."""
    if short_side is None or min(width, height) <= short_side:
        return width, height
    scale = short_side / min(width, height)
    return max(short_side, round(width * scale)), max(short_side, round(height * scale))


def load_video_frames(
    path: str,
    num_frames: int,
    *,
    short_side: int | None = None,
    timeout_s: float = 300.0,
    window: tuple[float, float] | None = None,
) -> np.ndarray:
    """`num_frames` RGB frames, uint8 (T, H, W, 3), spread uniformly over the whole file (or
    over the frames within `window`, (start, end) seconds, as a streaming benchmark shows a
    video up to a moment).

    A clip shorter than `num_frames` repeats frames (the release does so for video files).
    `short_side` shrinks frames while decoding (the processor passes the vision tower's image
    size). Raises SampleError.
    """
    return load_timed_frames(
        path, num_frames, short_side=short_side, timeout_s=timeout_s, window=window
    )[0]


def load_timed_frames(
    path: str,
    num_frames: int,
    *,
    short_side: int | None = None,
    timeout_s: float = 300.0,
    window: tuple[float, float] | None = None,
) -> tuple[np.ndarray, list[float]]:
    """`load_video_frames` and each frame's time in the file, seconds (index / frame rate)."""
    if "://" not in path and not os.path.exists(path):
        raise missing("missing_video", path)
    try:
        info = parse_probe(run_ffprobe(path, timeout_s))
    except ProbeError as exc:
        raise SampleError("video_unreadable", f"{path}: {exc}") from None
    if info is None:
        raise SampleError("no_video_stream", f"{path} has no video stream")
    width, height = _decode_size(info.display_width, info.display_height, short_side)
    stream = FrameStream(path, width, height, "area", timeout_s)
    # The total is only known at the end of the stream; frames are small after the shrink.
    decoded = list(stream)
    if stream.error is not None:
        # A truncated or corrupt file fails loudly instead of training on part of a clip.
        raise SampleError("video_decode_error", f"{path}: {stream.error}")
    fps = info.fps or 25.0
    shown = range(len(decoded))
    if window is not None:
        shown = [i for i in shown if window[0] <= i / fps <= window[1]]
    if not shown:
        raise SampleError(
            "no_frames", f"{path}: no frame decoded" + (f" in {window} s" if window else "")
        )
    indices = [shown[i] for i in uniform_frame_indices(len(shown), num_frames)]
    picked = [decoded[i][:, :, ::-1] for i in indices]  # BGR (ffmpeg's rawvideo) -> RGB
    return np.ascontiguousarray(np.stack(picked)), [i / fps for i in indices]


def preprocess_frames(
    frames: np.ndarray,
    image_size: int,
    mean: float = SIGLIP_MEAN,
    std: float = SIGLIP_STD,
) -> torch.Tensor:
    """uint8 (T, H, W, 3) RGB → float32 (T, 3, S, S): resized to S×S (bilinear, antialiased,
    no padding to a square), scaled to [0, 1], normalised with (x − mean) / std."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got shape {tuple(frames.shape)}")
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(
            x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False
        ).clamp_(0.0, 255.0)
    return (x / 255.0 - mean) / std
