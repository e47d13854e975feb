"""Body keypoints by an ultralytics YOLO pose model (COCO's 17 points; weights by path, or by
name when online: yolo11n-pose.pt ... yolo11x-pose.pt). The largest person is the one kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from curation.detect.ultralytics_persons import load_yolo
from curation.signals.base import Keypoint, SignalUnavailable
from curation.signals.config import PoseConfig

DEFAULT_WEIGHTS = "yolo11n-pose.pt"
# COCO: 5/6 shoulders, 7/8 elbows, 9/10 wrists, 11/12 hips, 13/14 knees, 15/16 ankles
COCO_BODY = (5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)


@dataclass
class UltralyticsPose:
    config: PoseConfig
    uses_gpu: ClassVar[bool] = True
    layout: ClassVar[str] = "coco17"
    body: ClassVar[tuple[int, ...]] = COCO_BODY
    _model: Any = field(default=None, init=False, repr=False)
    _device: str = field(default="cpu", init=False, repr=False)

    @property
    def weights(self) -> str:
        return self.config.model or DEFAULT_WEIGHTS

    def check(self) -> None:  # small: loading it is the check
        self.setup("cpu")

    def setup(self, device: str = "cpu") -> None:
        if self._model is not None:
            return
        self._device = device
        model = load_yolo(self.weights, "signals.pose.model (a *-pose.pt)", SignalUnavailable)
        if getattr(model, "task", None) != "pose":
            raise SignalUnavailable(f"pose: {self.weights!r} is a {model.task} model, not pose")
        self._model = model

    def keypoints(self, frame: np.ndarray) -> list[Keypoint]:
        self.setup()
        result = self._model.predict([np.ascontiguousarray(frame[:, :, ::-1])],
                                     conf=self.config.score_threshold, device=self._device,
                                     verbose=False)[0]  # fmt: skip
        if result.keypoints is None or len(result.boxes) == 0:
            return []
        boxes = result.boxes.xyxy.cpu().numpy()
        main = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
        xy = result.keypoints.xyn.cpu().numpy()[main]
        conf = result.keypoints.conf
        vis = conf.cpu().numpy()[main] if conf is not None else np.ones(len(xy))
        return [Keypoint(float(x), float(y), float(v)) for (x, y), v in zip(xy, vis, strict=True)]
