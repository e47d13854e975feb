"""Silero VAD (the `silero-vad` package ships its ONNX model: MIT, no download)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from curation.signals.base import SignalUnavailable
from curation.signals.config import VadConfig


@dataclass
class SileroVad:
    config: VadConfig
    uses_gpu: ClassVar[bool] = False
    _model: Any = field(default=None, init=False, repr=False)

    def check(self) -> None:  # small: loading it is the check
        self.setup("cpu")

    def setup(self, device: str = "cpu") -> None:  # a small ONNX model: CPU
        if self._model is not None:
            return
        try:
            from silero_vad import load_silero_vad
        except ImportError as exc:
            raise SignalUnavailable("silero-vad is not installed (pip install silero-vad)") from exc
        self._model = load_silero_vad(onnx=True)

    def speech(self, samples: np.ndarray, rate: int) -> list[tuple[float, float]]:
        self.setup()
        if samples.size < rate // 10:
            return []
        import torch
        from silero_vad import get_speech_timestamps

        found = get_speech_timestamps(
            torch.from_numpy(np.ascontiguousarray(samples, np.float32)), self._model,
            threshold=self.config.threshold, sampling_rate=rate,
            min_speech_duration_ms=int(self.config.min_speech_s * 1000),
            min_silence_duration_ms=int(self.config.min_silence_s * 1000),
        )  # fmt: skip
        return [(s["start"] / rate, s["end"] / rate) for s in found]
