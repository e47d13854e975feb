"""Face boxes from insightface's SCRFD/RetinaFace detectors (ONNX Runtime).

`model` is an .onnx file, a folder holding one detection model (det_*.onnx / scrfd*.onnx),
or a model-pack name (buffalo_l, antelopev2, ...) looked up in insightface's model root
(~/.insightface/models/<name>, which insightface downloads into when online).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from curation.detect.base import Detection, DetectorConfig, DetectorUnavailable, threshold

DEFAULT_PACK = "buffalo_l"
INSIGHTFACE_ROOT = Path(os.environ.get("INSIGHTFACE_HOME", "~/.insightface")).expanduser()


def detection_onnx(model: str) -> Path | None:
    """The detection model file that `model` names, if it is on this machine."""
    path = Path(model).expanduser()
    if path.is_file():
        return path
    folder = path if path.is_dir() else INSIGHTFACE_ROOT / "models" / model
    if folder.is_dir():
        found = sorted(folder.glob("det_*.onnx")) + sorted(folder.glob("scrfd*.onnx"))
        found += sorted(folder.glob("retinaface*.onnx"))
        return found[0] if found else None
    return None


@dataclass
class InsightfaceFaces:
    config: DetectorConfig
    uses_gpu: ClassVar[bool] = True
    _model: Any = field(default=None, init=False, repr=False)

    def setup(self, device: str = "cpu") -> None:
        if self._model is not None:
            return
        try:
            from insightface.model_zoo import get_model
        except ImportError as exc:
            raise DetectorUnavailable(
                "insightface is not installed (pip install insightface)"
            ) from exc
        name = self.config.model or DEFAULT_PACK
        onnx = detection_onnx(name)
        if onnx is None and "/" not in name and not name.endswith(".onnx"):
            onnx = self._download_pack(name)
        if onnx is None:
            raise DetectorUnavailable(
                f"insightface: no detection model for {name!r} (not an .onnx file, not a folder "
                f"with det_*.onnx, not a pack under {INSIGHTFACE_ROOT / 'models'}). Download the "
                "pack once on a machine with network (insightface.app.FaceAnalysis(name=...)) "
                "or set boxes.face.model to a local SCRFD .onnx file."
            )
        cuda = device.startswith("cuda")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else None
        model = get_model(str(onnx), providers=providers or ["CPUExecutionProvider"])
        if model is None or not hasattr(model, "detect"):
            raise DetectorUnavailable(f"insightface: {onnx} is not a face detection model")
        side = self.config.input_size
        ctx = (int(device.split(":")[1]) if ":" in device else 0) if cuda else -1
        model.prepare(ctx, input_size=(side, side), det_thresh=threshold(self.config, 0.5))
        self._model = model

    @staticmethod
    def _download_pack(name: str) -> Path | None:
        """insightface's own download of a model pack; None when it cannot (offline)."""
        from insightface.utils.storage import ensure_available

        try:
            ensure_available("models", name, root=str(INSIGHTFACE_ROOT))
        except Exception:  # no network, unknown pack: the caller says what to do
            return None
        return detection_onnx(name)

    def detect(self, frame: np.ndarray) -> list[Detection]:
        self.setup()
        side = self.config.input_size
        boxes, _landmarks = self._model.detect(
            np.ascontiguousarray(frame[:, :, ::-1]), input_size=(side, side)
        )
        return [Detection("face", *map(float, b[:4]), float(b[4])) for b in boxes]
