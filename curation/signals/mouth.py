"""How open the mouth is, frame by frame: MediaPipe's face mesh (468 landmarks, in the
mediapipe 0.10.21 wheel) on RGB frames, in video mode (it tracks the face between frames).

Openness is the gap between the inner lips (landmarks 13 and 14) over the face's height
(forehead 10 to chin 152), so it does not depend on how large the face is in the frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curation.signals.base import mediapipe_solution

UPPER_LIP, LOWER_LIP, FOREHEAD, CHIN = 13, 14, 10, 152


@dataclass
class MouthTracker:
    min_confidence: float = 0.5
    _mesh: Any = field(default=None, init=False, repr=False)

    def setup(self) -> None:
        if self._mesh is not None:
            return
        FaceMesh = mediapipe_solution("face_mesh").FaceMesh
        self._mesh = FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False,
                              min_detection_confidence=self.min_confidence,
                              min_tracking_confidence=self.min_confidence)  # fmt: skip

    def openness(self, frames: Iterable[np.ndarray]) -> np.ndarray:
        """Mouth openness per frame of one clip (RGB frames, in order), NaN where no face was
        found. The tracker starts afresh for every clip."""
        self.setup()
        self._mesh.reset()
        out = []
        for frame in frames:
            found = self._mesh.process(np.ascontiguousarray(frame))
            value = np.nan
            if found.multi_face_landmarks:
                lm = found.multi_face_landmarks[0].landmark
                height = lm[CHIN].y - lm[FOREHEAD].y
                if height > 0:
                    value = max(0.0, lm[LOWER_LIP].y - lm[UPPER_LIP].y) / height
            out.append(value)
        return np.asarray(out, np.float64)
