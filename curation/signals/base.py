"""What the signal backends share: their outputs and their interfaces."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from curation.backends.base import ModelUnavailable


class SignalUnavailable(ModelUnavailable):
    """A signal's package or weights cannot be had (e.g. offline without a local file)."""


def mediapipe_solution(name: str) -> Any:
    """A module of mediapipe's solutions (pose, face_mesh, hands) for a signal backend;
    SignalUnavailable, saying how to install it, where mediapipe is missing."""
    from curation.detect.mediapipe_faces import MISSING, import_solution

    try:
        return import_solution(name)
    except ImportError as exc:
        raise SignalUnavailable(MISSING) from exc


@dataclass(frozen=True)
class Word:
    start_s: float
    end_s: float
    word: str
    probability: float


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str | None
    words: list[Word]


@dataclass(frozen=True)
class Sync:
    score: float  # 0..1: how much better the best offset fits than offsets at random
    offset_s: float  # > 0: the sound comes this much after the mouth movement it belongs to
    # The backend's own measure at that offset: Pearson r of mouth and loudness (landmarks), or
    # SyncNet's confidence, the median minus the smallest embedding distance (LSE-C)
    raw: float


@dataclass(frozen=True)
class Keypoint:
    x: float  # normalised to the frame, 0..1 inside it
    y: float
    visibility: float  # 0..1, the model's own confidence that the point is in view


class Backend(Protocol):
    uses_gpu: ClassVar[bool]

    def setup(self, device: str = "cpu") -> None:
        """Load the model on `device`; raises SignalUnavailable with a clear message."""
        ...

    def check(self) -> None:
        """In the driver, before any work: raise SignalUnavailable when the model cannot be
        had, as cheaply as that can be told (a large model is not loaded to find out)."""
        ...


class Vad(Backend, Protocol):
    def speech(self, samples: np.ndarray, rate: int) -> list[tuple[float, float]]:
        """[start, end) seconds of every stretch of speech in 16 kHz mono samples."""
        ...


class Asr(Backend, Protocol):
    def transcribe(
        self, samples: np.ndarray, rate: int, segments: list[tuple[float, float]]
    ) -> Transcript:
        """What is said within `segments` (the VAD's speech), with word times in the clip."""
        ...


class LipSync(Backend, Protocol):
    def score(
        self,
        frames: Iterable[tuple[float, np.ndarray]],
        fps: float,
        samples: np.ndarray,
        rate: int,
    ) -> Sync | None:
        """How the face's mouth in (time, RGB frame) pairs, `fps` of them a second, fits the
        sound; None when no face is seen for long enough."""
        ...


class Pose(Backend, Protocol):
    layout: ClassVar[str]  # the keypoint set: "blazepose33" or "coco17"
    body: ClassVar[tuple[int, ...]]  # indices of shoulders, elbows, wrists, hips, knees, ankles

    def keypoints(self, frame: np.ndarray) -> list[Keypoint]:
        """The main person's keypoints in one RGB frame; [] when no person is found."""
        ...
