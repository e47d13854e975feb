"""dlib's HOG frontal face detector: built into dlib, no weights file to download.

Its boxes are the ones the face_recognition library reports (the Obama still's expected box
in tests/assets is such a regression value). Faces smaller than about 80 px are found only
with upsampling, which costs about 4x per step; frames are upsampled when small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from curation.detect.base import Detection, DetectorConfig, DetectorUnavailable, threshold


@dataclass
class DlibHogFaces:
    config: DetectorConfig
    uses_gpu: ClassVar[bool] = False
    # Upsample frames whose short side is below this, once: finds faces down to ~40 px.
    upsample_below: int = 480
    _detector: Any = field(default=None, init=False, repr=False)

    def setup(self, device: str = "cpu") -> None:  # CPU only
        if self._detector is not None:
            return
        try:
            import dlib
        except ImportError as exc:
            raise DetectorUnavailable(
                "dlib_hog needs the dlib package (pip install dlib-bin)"
            ) from exc
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, frame: np.ndarray) -> list[Detection]:
        self.setup()
        upsample = 1 if min(frame.shape[:2]) < self.upsample_below else 0
        # dlib's own threshold argument shifts the SVM margin; filter on the score instead so
        # that the score column means the same whatever the threshold.
        rects, scores, _ = self._detector.run(np.ascontiguousarray(frame), upsample, -0.5)
        cut = threshold(self.config, 0.3)
        h, w = frame.shape[:2]
        return [
            Detection(
                "face",
                float(max(0, r.left())),
                float(max(0, r.top())),
                float(min(w, r.right())),
                float(min(h, r.bottom())),
                float(s),
            )  # fmt: skip
            for r, s in zip(rects, scores, strict=True)
            if s >= cut
        ]
