"""MediaPipe's BlazeFace (full range by default): the offline face detector with real weights.

The `mediapipe` 0.10.21 wheel ships BlazeFace short- and full-range as .tflite files (later
versions ship none); `make setup` installs it without its declared dependencies, which pin an
older NumPy and the GUI OpenCV build (it runs on the project's NumPy and headless OpenCV).
`model`: "full" (faces up to about five metres, the default) or "short" (within two metres).
BlazeFace looks at a 192-pixel square, so faces that are small in a large frame need
`tile` (curation/detect/tiling.py): on a 1080p frame of 20-90 px faces, tiles of 360 px
find 29 of 30 (bench/boxes.py).
"""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from curation.detect.base import Detection, DetectorConfig, DetectorUnavailable, threshold

MODELS = {"full": 1, "short": 0}
# protobuf 5+ dropped MessageFactory.GetPrototype; mediapipe 0.10.21's bindings print that
# error once when imported and work without it (its face detector does not use it).
_KNOWN_IMPORT_NOISE = "'MessageFactory' object has no attribute 'GetPrototype'"


def import_solution(name: str) -> Any:
    """A module of mediapipe's solutions (face_detection, face_mesh, pose), without the
    known import-time noise on stderr."""
    import importlib

    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        module = importlib.import_module(f"mediapipe.python.solutions.{name}")
    rest = [line for line in captured.getvalue().splitlines() if _KNOWN_IMPORT_NOISE not in line]
    if rest:
        print("\n".join(rest), file=sys.stderr)
    return module


MISSING = (
    "mediapipe is not installed: `pip install --no-deps mediapipe==0.10.21` "
    "(make setup does; later versions ship no models)"
)


@dataclass
class MediapipeFaces:
    config: DetectorConfig
    uses_gpu: ClassVar[bool] = False
    _model: Any = field(default=None, init=False, repr=False)

    def setup(self, device: str = "cpu") -> None:  # CPU only
        if self._model is not None:
            return
        name = self.config.model or "full"
        if name not in MODELS:
            raise DetectorUnavailable(
                f"mediapipe: model must be one of {list(MODELS)}, not {name!r}"
            )
        try:
            FaceDetection = import_solution("face_detection").FaceDetection
        except ImportError as exc:
            raise DetectorUnavailable(MISSING) from exc
        self._model = FaceDetection(
            model_selection=MODELS[name], min_detection_confidence=threshold(self.config, 0.5)
        )

    def detect(self, frame: np.ndarray) -> list[Detection]:
        self.setup()
        h, w = frame.shape[:2]
        found = self._model.process(np.ascontiguousarray(frame))
        out = []
        for d in found.detections or []:
            b = d.location_data.relative_bounding_box
            x1, y1 = max(0.0, b.xmin * w), max(0.0, b.ymin * h)
            x2, y2 = min(float(w), (b.xmin + b.width) * w), min(float(h), (b.ymin + b.height) * h)
            out.append(Detection("face", x1, y1, x2, y2, float(d.score[0])))
        return out
