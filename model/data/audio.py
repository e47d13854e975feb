"""Audio for the Whisper encoder: 16 kHz mono decoded by ffmpeg, then log-mel features.

The command line is built by ffmpeg-python and run as an argument list (never a shell), with
local paths behind the `file:` protocol as in curation's media helpers.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import ffmpeg
import numpy as np
import torch

from curation.media.ffmpeg import (
    ProbeError,
    binary,
    media_input,
    run_ffprobe,
    stderr_summary,
)
from model.data.errors import SampleError, missing

SAMPLE_RATE = 16000


def _explain_failure(path: str, stderr: bytes, timeout_s: float) -> SampleError:
    """Why ffmpeg could not decode the audio: probing only on this path keeps the usual path
    to one process, and tells "no audio stream" apart from a broken file."""
    try:
        streams = run_ffprobe(path, timeout_s).get("streams") or []
    except ProbeError as exc:
        return SampleError("audio_unreadable", f"{path}: {exc}")
    # Raw streams, not parse_probe: that one describes video and is None for an audio file.
    if not any(s.get("codec_type") == "audio" for s in streams):
        return SampleError("no_audio_stream", f"{path} has no audio stream")
    return SampleError("audio_decode_error", f"{path}: ffmpeg failed: {stderr_summary(stderr)}")


def load_audio(
    path: str,
    sample_rate: int = SAMPLE_RATE,
    *,
    max_seconds: float | None = None,
    timeout_s: float = 300.0,
) -> np.ndarray:
    """The first audio stream of `path` as float32 mono at `sample_rate`, at most `max_seconds`
    long (the encoder's window: decoding more would be thrown away). Raises SampleError."""
    if "://" not in path and not os.path.exists(path):
        raise missing("missing_audio", path)
    seek = {"t": f"{max_seconds:.6f}"} if max_seconds else {}
    stream = ffmpeg.input(media_input(path), **seek)["a:0"]
    args = (
        ffmpeg.output(stream, "pipe:", format="f32le", acodec="pcm_f32le", ac=1, ar=sample_rate)
        .global_args("-nostdin", "-hide_banner", "-v", "error")
        .compile(cmd=binary("ffmpeg"))
    )
    try:
        proc = subprocess.run(
            args, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise SampleError(
            "audio_decode_error", f"{path}: ffmpeg timed out after {timeout_s:.0f} s"
        ) from None
    if proc.returncode != 0:
        raise _explain_failure(path, proc.stderr, timeout_s)
    waveform = np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)
    if waveform.size == 0:
        raise SampleError("empty_audio", f"{path}: the audio stream decoded to no samples")
    return waveform


def window_seconds(feature_extractor: Any) -> float:
    """Length of the encoder's input window (30 s for Whisper, 1 s for the tiny test model)."""
    return feature_extractor.n_samples / feature_extractor.sampling_rate


def audio_features(waveform: np.ndarray, feature_extractor: Any) -> torch.Tensor:
    """Whisper log-mel features (n_mels, frames), padded or cut to the extractor's window."""
    if waveform.ndim != 1:
        raise ValueError(f"waveform must be mono (1-D), got shape {waveform.shape}")
    out = feature_extractor(
        waveform,
        sampling_rate=feature_extractor.sampling_rate,
        padding="max_length",
        truncation=True,
        return_tensors="np",
    )
    return torch.from_numpy(np.ascontiguousarray(out["input_features"][0], dtype=np.float32))
