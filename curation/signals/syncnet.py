"""Lip sync by a trained SyncNet (syncnet_model.py): the production backend, `kind: syncnet`,
`model:` the released weights file (`syncnet_v2.model` of joonson/syncnet_python, MIT).

As the release evaluates a clip: frames at 25 fps, the face cropped as its pipeline crops a
track (the box's half-size `s` around the box centre, widened by 40% and extended down to
take in the chin) and resized to 224x224 BGR; MFCCs of the 16 kHz sound
(python_speech_features, 13 x 100 Hz); one embedding per 5 frames and per the 20 MFCC steps
they span. At each audio offset k within ±max_offset_s the mean distance between lip
embedding t and audio embedding t + k is taken; the smallest gives `lip_sync_offset_s`
(> 0: the sound is late), and the release's confidence (median minus smallest distance,
LSE-C) is `lip_sync_raw`. `lip_sync` is that confidence over the median distance (0..1), so
both backends' scores read the same way: how far the best offset stands out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from curation.detect.base import DetectorConfig
from curation.detect.mediapipe_faces import MediapipeFaces
from curation.signals.base import SignalUnavailable, Sync
from curation.signals.config import LipSyncConfig

FPS = 25.0  # SyncNet's frame rate: 4 MFCC steps per frame
CROP, WINDOW, STEPS = 224, 5, 20
BATCH = 32


def face_crop(frame: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The release's crop of a face box from an RGB frame, as a 224x224 BGR image."""
    x1, y1, x2, y2 = box
    half, widen = max(x2 - x1, y2 - y1) / 2, 0.4
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    pad = int(half * (1 + 2 * widen)) + 1  # the frame is padded so a crop never leaves it
    padded = cv2.copyMakeBorder(
        frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(110, 110, 110)
    )
    cx, cy = cx + pad, cy + pad
    crop = padded[int(cy - half) : int(cy + half * (1 + 2 * widen)),
                  int(cx - half * (1 + widen)) : int(cx + half * (1 + widen))]  # fmt: skip
    return cv2.resize(crop, (CROP, CROP))[:, :, ::-1]


@dataclass
class SyncNetLipSync:
    config: LipSyncConfig
    uses_gpu: ClassVar[bool] = True
    _net: Any = field(default=None, init=False, repr=False)
    _device: str = field(default="cpu", init=False, repr=False)
    _faces: MediapipeFaces = field(
        default_factory=lambda: MediapipeFaces(DetectorConfig(kind="mediapipe")), init=False,
        repr=False,
    )  # fmt: skip

    def check(self) -> None:  # small: loading it is the check
        self.setup("cpu")

    def setup(self, device: str = "cpu") -> None:
        if self._net is not None:
            return
        weights = self.config.model
        if not weights or not Path(weights).is_file():
            raise SignalUnavailable(
                f"signals.lip_sync.model: SyncNet needs its weights file (syncnet_v2.model of the "
                f"public SyncNet release); {weights!r} is not a file. Without one, use "
                "signals.lip_sync.kind: landmarks."
            )
        try:
            import python_speech_features  # noqa: F401
            import torch

            from curation.signals.syncnet_model import SyncNet

            net = SyncNet()
            net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        except ImportError as exc:
            raise SignalUnavailable(f"syncnet needs {exc.name} (pip install {exc.name})") from exc
        except Exception as exc:  # a foreign or damaged file
            raise SignalUnavailable(
                f"signals.lip_sync.model: {weights!r} is not SyncNet's state dict: "
                f"{str(exc).splitlines()[0]}"
            ) from None
        self._device = device
        self._net = net.to(device).eval()
        self._faces.setup()

    def _crops(self, frames: Iterable[tuple[float, np.ndarray]], fps: float) -> np.ndarray:
        """Face crops at 25 fps (nearest frame in time); a frame without a face keeps the last
        box, and frames before the first face are dropped."""
        crops: list[np.ndarray] = []
        box = None
        for t, frame in frames:
            found = self._faces.detect(frame)
            if found:
                b = max(found, key=lambda d: d.area)
                box = (b.x1, b.y1, b.x2, b.y2)
            if box is None:
                continue
            crop = face_crop(frame, box)
            while len(crops) / FPS <= t + 0.5 / fps:  # repeat or skip frames onto the 25-fps grid
                crops.append(crop)
        return np.stack(crops) if crops else np.zeros((0, CROP, CROP, 3), np.uint8)

    def score(
        self,
        frames: Iterable[tuple[float, np.ndarray]],
        fps: float,
        samples: np.ndarray,
        rate: int,
    ) -> Sync | None:
        import python_speech_features
        import torch

        crops = self._crops(frames, fps)
        pcm = np.clip(samples * 32768, -32768, 32767).astype(np.int16)
        mfcc = python_speech_features.mfcc(pcm, rate).T.astype(np.float32)  # (13, steps)
        n = min(len(crops) - WINDOW + 1, (mfcc.shape[1] - STEPS) // 4 + 1)
        if n < max(2, round(self.config.min_overlap_s * FPS)):
            return None
        lips, sound = [], []
        with torch.no_grad():
            for i in range(0, n, BATCH):
                idx = range(i, min(n, i + BATCH))
                clips = np.stack([crops[v : v + WINDOW] for v in idx])  # (B, 5, H, W, 3)
                x = torch.from_numpy(clips).float().permute(0, 4, 1, 2, 3).to(self._device)
                lips.append(self._net.lips(x).cpu())
                a = np.stack([mfcc[:, 4 * v : 4 * v + STEPS] for v in idx])[:, None]
                sound.append(self._net.audio(torch.from_numpy(a).to(self._device)).cpu())
        lip, aud = torch.cat(lips), torch.cat(sound)
        k_max = round(self.config.max_offset_s * FPS)
        means = {}
        for k in range(-k_max, k_max + 1):
            lo, hi = max(0, -k), min(n, n - k)
            if hi - lo >= 2:
                means[k] = float(
                    torch.nn.functional.pairwise_distance(lip[lo:hi], aud[lo + k : hi + k]).mean()
                )
        best = min(means, key=lambda k: means[k])
        median = float(np.median(list(means.values())))
        conf = median - means[best]
        return Sync(round(max(0.0, conf / median) if median > 0 else 0.0, 4), round(best / FPS, 4),
                    round(conf, 4))  # fmt: skip
