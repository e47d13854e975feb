"""What every face/person detector backend shares: its config, its output and its interface.

A detector takes RGB uint8 frames and returns boxes in that frame's pixels. Scores are each
backend's own confidence: a probability for the CNN detectors (insightface, ultralytics,
ssdlite), the SVM margin for dlib's and OpenCV's HOG, the boosting stage margin for Haar
cascades. Thresholds are therefore per backend, and each has a measured default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from curation.backends.base import ModelUnavailable

DetectorKind = Literal[
    "mediapipe", "opencv_haar", "dlib_hog", "insightface", "ultralytics", "ssdlite", "opencv_hog"
]
FACE_KINDS = ("mediapipe", "opencv_haar", "dlib_hog", "insightface")
PERSON_KINDS = ("ultralytics", "ssdlite", "opencv_hog")


class DetectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    kind: DetectorKind
    model: str | None = Field(
        None,
        description="insightface: a model folder, an .onnx file or a model-pack name; "
        "ultralytics: a weights file or name (yolo11n.pt); others: not used",
    )
    score_threshold: float | None = Field(None, description="None: the backend's default")
    device: str | None = Field(None, description="None: the GPU the worker was given, else CPU")
    input_size: int = Field(640, ge=32, description="network input side (CNN backends)")
    tile: int | None = Field(
        None, ge=64, description="also detect on overlapping tiles of this side (small faces)"
    )


class DetectorUnavailable(ModelUnavailable):
    """The detector's package or weights cannot be had (e.g. offline without a local file)."""


@dataclass(frozen=True)
class Detection:
    cls: str  # "face" or "person"
    x1: float
    y1: float
    x2: float
    y2: float
    score: float

    @property
    def area(self) -> float:
        return max(0.0, self.x2 - self.x1) * max(0.0, self.y2 - self.y1)


class Detector(Protocol):
    config: DetectorConfig
    uses_gpu: ClassVar[bool]  # the model runs on a GPU when its worker has one

    def setup(self, device: str = "cpu") -> None:
        """Load the model on `device`; raises DetectorUnavailable with a clear message when it
        cannot."""
        ...

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Boxes in one RGB uint8 frame, in its pixels."""
        ...


def threshold(config: DetectorConfig, default: float) -> float:
    return default if config.score_threshold is None else config.score_threshold
