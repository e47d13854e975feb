"""OpenCV's bundled classic detectors: a Haar cascade for faces and HOG+SVM for pedestrians.

Both ship inside opencv-python-headless (OpenCV 4; OpenCV 5 dropped them), so they work with
no download at all. They are the weakest backends here (see `make bench-boxes` and the
README): the Haar cascade finds frontal faces only; the HOG people detector was trained on
upright, full-body pedestrians and misses sitting, crouching or cropped people.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import cv2
import numpy as np

from curation.detect.base import Detection, DetectorConfig, DetectorUnavailable, threshold

HAAR_FACE_FILE = "haarcascade_frontalface_default.xml"


@dataclass
class HaarFaces:
    config: DetectorConfig
    uses_gpu: ClassVar[bool] = False
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size: int = 24
    _cascade: Any = field(default=None, init=False, repr=False)

    def setup(self, device: str = "cpu") -> None:  # CPU only
        if self._cascade is not None:
            return
        data = getattr(cv2, "data", None)
        path = self.config.model or (data.haarcascades + HAAR_FACE_FILE if data else "")
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise DetectorUnavailable(
                f"opencv_haar: cannot load the cascade {path!r} (OpenCV 5 no longer bundles "
                "Haar cascades: install opencv-python-headless<5 or set model to a cascade file)"
            )
        self._cascade = cascade

    def detect(self, frame: np.ndarray) -> list[Detection]:
        self.setup()
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        rects, _levels, weights = self._cascade.detectMultiScale3(
            grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size), outputRejectLevels=True,
        )  # fmt: skip
        cut = threshold(self.config, 0.0)
        return [
            Detection("face", float(x), float(y), float(x + w), float(y + h), float(s))
            for (x, y, w, h), s in zip(rects, np.ravel(weights), strict=True)
            if s >= cut
        ]


@dataclass
class HogPersons:
    config: DetectorConfig
    uses_gpu: ClassVar[bool] = False
    _hog: Any = field(default=None, init=False, repr=False)

    def setup(self, device: str = "cpu") -> None:  # CPU only
        if self._hog is None:
            hog = cv2.HOGDescriptor()
            hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
            self._hog = hog

    def detect(self, frame: np.ndarray) -> list[Detection]:
        self.setup()
        rects, weights = self._hog.detectMultiScale(
            cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), winStride=(8, 8), padding=(8, 8), scale=1.05
        )
        cut = threshold(self.config, 0.3)
        return [
            Detection("person", float(x), float(y), float(x + w), float(y + h), float(s))
            for (x, y, w, h), s in zip(rects, np.ravel(weights), strict=True)
            if s >= cut
        ]
