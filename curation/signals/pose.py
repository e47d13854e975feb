"""Body keypoints by MediaPipe's BlazePose (full model, in the mediapipe 0.10.21 wheel): 33
points of one person per frame, each with the model's visibility. Images are independent
(static mode): the sampled frames of a clip are seconds apart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from curation.signals.base import Keypoint, mediapipe_solution
from curation.signals.config import PoseConfig

# BlazePose: 11/12 shoulders, 13/14 elbows, 15/16 wrists, 23/24 hips, 25/26 knees, 27/28 ankles
BLAZEPOSE_BODY = (11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


@dataclass
class MediapipePose:
    config: PoseConfig
    uses_gpu: ClassVar[bool] = False
    layout: ClassVar[str] = "blazepose33"
    body: ClassVar[tuple[int, ...]] = BLAZEPOSE_BODY
    _model: Any = field(default=None, init=False, repr=False)

    def check(self) -> None:  # small: loading it is the check
        self.setup("cpu")

    def setup(self, device: str = "cpu") -> None:  # CPU only
        if self._model is not None:
            return
        Pose = mediapipe_solution("pose").Pose
        self._model = Pose(static_image_mode=True, model_complexity=1,
                           min_detection_confidence=self.config.score_threshold)  # fmt: skip

    def keypoints(self, frame: np.ndarray) -> list[Keypoint]:
        self.setup()
        found = self._model.process(np.ascontiguousarray(frame))
        if found.pose_landmarks is None:
            return []
        return [Keypoint(float(p.x), float(p.y), float(p.visibility))
                for p in found.pose_landmarks.landmark]  # fmt: skip
