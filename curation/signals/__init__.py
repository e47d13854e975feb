"""Human signals of a clip: speech (VAD), transcripts (ASR), lip sync, body pose and framing.

Every model is a backend behind a small interface (base.py), picked by its config's `kind`
(curation/signals/config.py); modules import their heavy packages in setup(), not on import,
so a missing package or weights file fails at the stage's preflight, before any work.
"""

from __future__ import annotations

import importlib
from typing import Any

from curation.signals.base import SignalUnavailable

# (signal, kind) -> (module, class)
KINDS: dict[tuple[str, str], tuple[str, str]] = {
    ("vad", "silero"): ("curation.signals.vad", "SileroVad"),
    ("asr", "faster_whisper"): ("curation.signals.asr", "FasterWhisperAsr"),
    ("lip_sync", "landmarks"): ("curation.signals.lipsync", "LandmarkLipSync"),
    ("lip_sync", "syncnet"): ("curation.signals.syncnet", "SyncNetLipSync"),
    ("pose", "mediapipe"): ("curation.signals.pose", "MediapipePose"),
    ("pose", "ultralytics"): ("curation.signals.pose_ultralytics", "UltralyticsPose"),
}


def backend_class(signal: str, kind: str) -> Any:
    module, name = KINDS[(signal, kind)]
    return getattr(importlib.import_module(module), name)


def make_backend(signal: str, config: Any) -> Any:
    """The backend for `config.kind` of one signal, not yet set up."""
    return backend_class(signal, config.kind)(config)


__all__ = ["KINDS", "SignalUnavailable", "backend_class", "make_backend"]
