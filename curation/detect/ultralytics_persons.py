"""Person boxes from an ultralytics YOLO model (weights by path, or by name when online).

COCO-trained weights (yolo11n.pt, yolov8x.pt, ...) name class 0 "person"; a model whose
class names lack "person" (a custom or untrained one) is read as class 0. Frames go in as
BGR arrays, the layout ultralytics expects of numpy input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from curation.detect.base import (
    Detection,
    DetectorConfig,
    DetectorUnavailable,
    threshold,
)

DEFAULT_WEIGHTS = "yolo11n.pt"


def load_yolo(weights: str, setting: str, error: type[Exception]) -> Any:
    """An ultralytics YOLO model from a weights file or name; `error` (naming `setting`, the
    config field to set) when the package or the weights cannot be had."""
    try:
        from ultralytics import YOLO
    except ImportError as exc:
        raise error("ultralytics is not installed (pip install ultralytics)") from exc
    try:
        return YOLO(weights)
    except Exception as exc:  # a download that failed, a corrupt or foreign file
        where = "file" if Path(weights).exists() else "name (not a local file)"
        raise error(
            f"ultralytics: cannot load weights {weights!r} given as a {where}: "
            f"{str(exc).splitlines()[0]}. Offline, set {setting} to a local .pt file."
        ) from None


@dataclass
class UltralyticsPersons:
    config: DetectorConfig
    uses_gpu: ClassVar[bool] = True
    _model: Any = field(default=None, init=False, repr=False)
    _person: int = field(default=0, init=False, repr=False)
    _device: str = field(default="cpu", init=False, repr=False)

    @property
    def weights(self) -> str:
        return self.config.model or DEFAULT_WEIGHTS

    def setup(self, device: str = "cpu") -> None:
        if self._model is not None:
            return
        self._device = device
        model = load_yolo(self.weights, "boxes.person.model", DetectorUnavailable)
        names = {int(k): str(v) for k, v in dict(model.names).items()}
        self._person = next((k for k, v in names.items() if v == "person"), 0)
        self._model = model

    def detect(self, frame: np.ndarray) -> list[Detection]:
        self.setup()
        result = self._model.predict(
            [np.ascontiguousarray(frame[:, :, ::-1])], classes=[self._person],
            conf=threshold(self.config, 0.35), imgsz=self.config.input_size,
            device=self._device, verbose=False,
        )[0]  # fmt: skip
        xyxy = result.boxes.xyxy.cpu().numpy()
        conf = result.boxes.conf.cpu().numpy()
        return [
            Detection("person", *map(float, box), float(score))
            for box, score in zip(xyxy, conf, strict=True)
        ]
