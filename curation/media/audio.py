"""A clip's sound as 16 kHz mono samples, placed exactly on the clip's own timeline.

Sample 0 is the sound at the moment the clip's first video frame is shown. A track that
starts late is padded with silence in front (not pulled forward), one that starts early is
trimmed, and missing sound at the end is padded, so every clip's audio has exactly
duration x rate samples and a signal measured on it keeps its place against the frames.
ffmpeg keeps the container's timestamps (`-copyts`), cuts [start, end) of the video's
timeline with `atrim`, and `aresample`'s `first_pts=0` inserts the leading silence.
"""

from __future__ import annotations

import subprocess
from typing import Any

import ffmpeg
import numpy as np

from curation.core import faults
from curation.media.ffmpeg import binary, media_input, parse_probe, run_ffprobe, stderr_summary
from curation.storage import local_copy

RATE = 16_000


class AudioError(RuntimeError):
    """The audio track could not be decoded."""


def read_audio(
    path: str, start_s: float, duration_s: float, rate: int = RATE, timeout_s: float = 600.0
) -> np.ndarray:
    """float32 mono samples of [start_s, start_s + duration_s) on the file's own timeline
    (container timestamps, as ffprobe reports stream start times)."""
    n = max(0, round(duration_s * rate))
    seek = max(0.0, start_s - 1.0)  # input seeking lands before the start; atrim is exact
    stream = (
        ffmpeg.input(
            media_input(path), ss=f"{seek:.6f}", t=f"{start_s - seek + duration_s + 1:.6f}"
        )
        .audio.filter("atrim", start=f"{start_s:.6f}", end=f"{start_s + duration_s:.6f}")
        .filter("asetpts", f"PTS-{start_s:.6f}/TB")
        .filter("aresample", rate, **{"async": 1, "first_pts": 0})
    )
    cmd = (
        ffmpeg.output(stream, "pipe:", format="f32le", ac=1, ar=rate)
        .global_args("-nostdin", "-hide_banner", "-v", "error", "-copyts")
        .compile(cmd=binary("ffmpeg"))
    )
    try:
        result = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL,
                                timeout=timeout_s, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise AudioError(f"audio decoding timed out after {timeout_s:.0f} s") from None
    if result.returncode != 0:
        faults.check(result.stderr, path)
        raise AudioError(f"ffmpeg exited with {result.returncode}: {stderr_summary(result.stderr)}")
    samples = np.frombuffer(result.stdout, np.float32)[:n]
    return np.pad(samples, (0, n - samples.size)) if samples.size < n else samples.copy()


def clip_audio(clip: dict[str, Any], rate: int = RATE, timeout_s: float = 600.0) -> np.ndarray:
    """The audio of a clip row, aligned to its first frame; silence when it has no audio.

    A clip file is read from its own first video frame (its video stream's start time); a
    virtual clip from the source, at the source's video start plus the clip's start."""
    duration = float(clip["end_s"]) - float(clip["start_s"])
    if not clip.get("has_audio"):
        return np.zeros(max(0, round(duration * rate)), np.float32)
    if clip.get("clip_path"):
        with local_copy(clip["clip_path"]) as path:
            info = parse_probe(run_ffprobe(path, timeout_s))
            start = (info.video_start_s if info else None) or 0.0
            return read_audio(path, start, duration, rate, timeout_s)
    with local_copy(clip["path"]) as path:
        start = (clip.get("video_start_s") or 0.0) + float(clip["start_s"])
        return read_audio(path, start, duration, rate, timeout_s)


def frame_envelope(samples: np.ndarray, rate: int, times: np.ndarray, fps: float) -> np.ndarray:
    """Log loudness of the sound while each frame is shown ([t, t + 1/fps) per frame time)."""
    out = np.full(len(times), np.log(1e-4), np.float64)
    for i, t in enumerate(times):
        a, b = int(t * rate), int((t + 1.0 / fps) * rate)
        chunk = samples[max(0, a) : max(0, b)]
        if chunk.size:
            out[i] = np.log(float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2))) + 1e-4)
    return out
