"""Face and person detectors behind one interface (see base.py); `make_detector` picks one."""

from __future__ import annotations

import importlib

from curation.detect.base import (
    FACE_KINDS,
    PERSON_KINDS,
    Detection,
    Detector,
    DetectorConfig,
    DetectorUnavailable,
)

# kind -> (module, class). Modules import their heavy packages in setup(), not on import.
KINDS: dict[str, tuple[str, str]] = {
    "mediapipe": ("curation.detect.mediapipe_faces", "MediapipeFaces"),
    "opencv_haar": ("curation.detect.opencv_classic", "HaarFaces"),
    "opencv_hog": ("curation.detect.opencv_classic", "HogPersons"),
    "dlib_hog": ("curation.detect.dlib_faces", "DlibHogFaces"),
    "insightface": ("curation.detect.insightface_faces", "InsightfaceFaces"),
    "ultralytics": ("curation.detect.ultralytics_persons", "UltralyticsPersons"),
    "ssdlite": ("curation.detect.ssdlite_persons", "SsdlitePersons"),
}


def detector_class(kind: str) -> type[Detector]:
    module, name = KINDS[kind]
    return getattr(importlib.import_module(module), name)


def make_detector(config: DetectorConfig) -> Detector:
    """The backend for `config.kind` (on tiles too when `config.tile`), not yet set up."""
    detector = detector_class(config.kind)(config)
    if config.tile:
        from curation.detect.tiling import Tiled

        return Tiled(detector, config.tile)
    return detector


__all__ = [
    "FACE_KINDS",
    "KINDS",
    "PERSON_KINDS",
    "Detection",
    "Detector",
    "DetectorConfig",
    "DetectorUnavailable",
    "detector_class",
    "make_detector",
]
