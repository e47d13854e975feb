"""boxes: face and person boxes on frames sampled from each clip, and the early human filter.

Runs right after the cut by default, before any VLM: a clip where neither a face nor a person
is found in at least `min_human_fraction` of its sampled frames is rejected as `no_human`,
so the large models never see it, and the boxes found here travel with the clip to the end
(nothing is detected twice). Per-frame boxes go in the nested `boxes` column; per-clip counts
beside it. The stage can also run later (or without the filter) if the config says so.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from curation.core import schemas
from curation.core.config import Resources, Section
from curation.core.worker import GpuNeed, Worker
from curation.detect import Detection, Detector, DetectorConfig, detector_class, make_detector
from curation.detect.base import FACE_KINDS, PERSON_KINDS
from curation.media.frames import clip_frames
from stages.base import Stage, kept, rejected


class BoxesConfig(Section):
    """Face and person boxes on sampled frames, and the early human filter (stages/boxes.py)."""

    # BlazeFace on 360-px tiles: 29 of 30 faces of 20-90 px in a 1080p crowd, where dlib's
    # HOG finds 13 (make bench-boxes); frames keep their size up to 1920 px, so small faces
    # stay big enough to see.
    face: DetectorConfig | None = DetectorConfig(kind="mediapipe", tile=360)
    person: DetectorConfig | None = DetectorConfig(kind="ssdlite")
    frames: int = Field(8, ge=1, description="frames sampled uniformly from each clip")
    max_side: int = Field(1920, ge=32, description="longer side of a sampled frame, pixels")
    human_filter: bool = Field(True, description="reject clips without a face or person")
    min_human_fraction: float = Field(
        0.5, ge=0, le=1, description="share of sampled frames that must show a face or person"
    )
    threads: int = Field(2, ge=1, description="clips decoded at once per worker")
    batch_size: int = Field(16, ge=1)
    resources: Resources = Resources(cpus=1, gpus="auto", concurrency=2)

    @model_validator(mode="after")
    def _detectors(self) -> BoxesConfig:
        if self.face is not None and self.face.kind not in FACE_KINDS:
            raise ValueError(f"face.kind must be one of {list(FACE_KINDS)}")
        if self.person is not None and self.person.kind not in PERSON_KINDS:
            raise ValueError(f"person.kind must be one of {list(PERSON_KINDS)}")
        if self.face is None and self.person is None:
            raise ValueError("set at least one of face and person")
        return self


@dataclass(kw_only=True)
class BoxesStage(Stage):
    name: ClassVar[str] = "boxes"
    output_folder: ClassVar[str] = "boxes"
    order: ClassVar[float | None] = 50
    schema: ClassVar[pa.Schema] = schemas.BOXES
    adds: ClassVar[list[pa.Field]] = schemas.BOX_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "path", "clip_path", "start_s", "end_s")
    uses_actor: ClassVar[bool] = True

    cfg: BoxesConfig
    _detectors: list[Detector] = field(default_factory=list, init=False, repr=False)
    # Detector objects are not all thread-safe: frames are decoded in threads, detected in turn.
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def configs(self) -> list[DetectorConfig]:
        return [c for c in (self.cfg.face, self.cfg.person) if c is not None]

    def gpu_need(self) -> GpuNeed:
        return GpuNeed.most(
            [GpuNeed.for_device(c.device) for c in self.configs if detector_class(c.kind).uses_gpu]
        )

    def setup(self, worker: Worker) -> None:
        if not self._detectors:
            self._detectors = [make_detector(c) for c in self.configs]
            for d in self._detectors:
                d.setup(worker.device(d.config.device, f"{self.name} {d.config.kind}"))

    def teardown(self) -> None:
        self._detectors = []

    def preflight(self) -> None:
        # Cheap next to the run: missing weights fail here, before any work (loaded on the
        # CPU: only whether they can be had matters here).
        for config in self.configs:
            make_detector(config).setup("cpu")

    @property
    def detector_names(self) -> str:
        parts = [
            f"{k}={c.kind}" for k, c in (("face", self.cfg.face), ("person", self.cfg.person)) if c
        ]
        return " ".join(parts)

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        with self._lock:
            return [[d for det in self._detectors for d in det.detect(f)] for f in frames]

    def summarise(
        self, clip: dict[str, Any], frames: list[np.ndarray], times: list[float]
    ) -> dict[str, Any]:
        """The box columns of one clip from its sampled frames."""
        width, height = clip["display_width"], clip["display_height"]
        boxes, faces, persons, face_share = [], [], [], []
        for i, (frame, found) in enumerate(zip(frames, self.detect(frames), strict=True)):
            sx, sy = width / frame.shape[1], height / frame.shape[0]
            for d in found:  # CNN boxes may reach past the frame: clip them to it
                x1, x2 = (min(max(v * sx, 0.0), width) for v in (d.x1, d.x2))
                y1, y2 = (min(max(v * sy, 0.0), height) for v in (d.y1, d.y2))
                boxes.append(
                    {"frame": i, "t_s": round(times[i], 4), "cls": d.cls,
                     "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                     "nx1": x1 / width, "ny1": y1 / height, "nx2": x2 / width, "ny2": y2 / height,
                     "score": d.score}
                )  # fmt: skip
            faces.append(sum(d.cls == "face" for d in found))
            persons.append(sum(d.cls == "person" for d in found))
            area = sum(d.area for d in found if d.cls == "face")
            face_share.append(min(1.0, area / (frame.shape[0] * frame.shape[1])))
        return {
            "boxes": boxes,
            "box_detectors": self.detector_names,
            "frames_sampled": len(frames),
            "frames_with_face": sum(n > 0 for n in faces),
            "frames_with_person": sum(n > 0 for n in persons),
            "frames_with_human": sum(f + p > 0 for f, p in zip(faces, persons, strict=True)),
            "max_faces": max(faces, default=0),
            "max_persons": max(persons, default=0),
            "face_area_ratio": float(np.mean(face_share)) if face_share else 0.0,
        }

    def verdict(self, summary: dict[str, Any]) -> dict[str, Any]:
        need = max(1, math.ceil(self.cfg.min_human_fraction * summary["frames_sampled"]))
        if self.cfg.human_filter and summary["frames_with_human"] < need:
            return rejected(
                "no_human",
                f"a face or person in {summary['frames_with_human']} of "
                f"{summary['frames_sampled']} sampled frames (< {need})",
            )
        return kept()

    def process(self, batch: pa.Table) -> pa.Table:
        clips = batch.to_pylist()

        def read(clip: dict[str, Any]) -> tuple[list[np.ndarray], list[float]] | str:
            try:
                return clip_frames(clip, self.cfg.frames, self.cfg.max_side)
            except RuntimeError as exc:
                return str(exc)

        rows = []
        for clip, sampled in zip(clips, self.map_rows(read, clips, self.cfg.threads), strict=True):
            if isinstance(sampled, str):
                rows.append({**clip, "box_detectors": self.detector_names,
                             **rejected("decode_failed", sampled)})  # fmt: skip
                continue
            summary = self.summarise(clip, *sampled)
            rows.append({**clip, **summary, **self.verdict(summary)})
        return self.table(rows)
