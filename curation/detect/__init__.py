"""Face and person detectors behind one interface (see base.py); `make_detector` picks one."""

from __future__ import annotations

from curation.detect.base import (
    FACE_KINDS,
    PERSON_KINDS,
    Detection,
    Detector,
    DetectorConfig,
    DetectorUnavailable,
)


def make_detector(config: DetectorConfig) -> Detector:
    """The backend for `config.kind`; heavy imports happen in its setup(), not here."""
    if config.kind == "opencv_haar":
        from curation.detect.opencv_classic import HaarFaces

        return HaarFaces(config)
    if config.kind == "opencv_hog":
        from curation.detect.opencv_classic import HogPersons

        return HogPersons(config)
    if config.kind == "dlib_hog":
        from curation.detect.dlib_faces import DlibHogFaces

        return DlibHogFaces(config)
    if config.kind == "insightface":
        from curation.detect.insightface_faces import InsightfaceFaces

        return InsightfaceFaces(config)
    if config.kind == "ultralytics":
        from curation.detect.ultralytics_persons import UltralyticsPersons

        return UltralyticsPersons(config)
    if config.kind == "ssdlite":
        from curation.detect.ssdlite_persons import SsdlitePersons

        return SsdlitePersons(config)
    raise ValueError(f"unknown detector kind {config.kind!r}")


__all__ = [
    "FACE_KINDS",
    "PERSON_KINDS",
    "Detection",
    "Detector",
    "DetectorConfig",
    "DetectorUnavailable",
    "make_detector",
]
