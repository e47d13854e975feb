"""events: timed visual events of each clip (curation/signals/events.py): a hand raised, a
wave, a stop gesture, pointing, someone approaching the camera or leaving.

Frames are read at `events.fps` (5) over the whole clip, decoded as they are used; on each,
the pose model finds the body joints and BlazeFace the faces, and where a wrist is above its
shoulder MediaPipe Hands the hands' shapes (`events.hands`). No clip is dropped for its
events: they are what `make export FORMAT=vispeak` builds its streaming items from.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field

from curation.core import schemas
from curation.core.config import Resources, Section
from curation.core.worker import GpuNeed, Worker
from curation.detect.base import DetectorConfig
from curation.detect.mediapipe_faces import MediapipeFaces
from curation.media.frames import iter_clip_frames
from curation.signals import backend_class, make_backend
from curation.signals.config import PoseConfig
from curation.signals.events import EventRules, Frame, detect_events, frames_from, wrist_up
from curation.signals.hands import MediapipeHands
from stages.base import Stage, kept, rejected


class EventsConfig(Section):
    """Timed visual events (stages/events.py, curation/signals/events.py)."""

    fps: float = Field(5.0, gt=0, le=30, description="frames per second read for the events")
    max_side: int = Field(640, ge=64, description="longer side of those frames, pixels")
    pose: PoseConfig = PoseConfig()
    min_gesture_s: float = Field(0.6, gt=0, description="a hand held up or an arm out this long")
    wave_swings: int = Field(2, ge=1, description="sideways reversals of a raised hand: a wave")
    approach_growth: float = Field(1.4, gt=1, description="a face growing this much: approach")
    leave_absent_s: float = Field(1.0, gt=0, description="a person gone this long has left")
    rejoin_s: float = Field(
        2.5, gt=0, description="back this soon without having walked off: the same person"
    )
    hands: bool = Field(
        True, description="check a stop gesture's hand with MediaPipe Hands: an open palm, up"
    )
    batch_size: int = Field(8, ge=1)
    resources: Resources = Resources(cpus=1, gpus="auto", concurrency=2)


@dataclass(kw_only=True)
class EventsStage(Stage):
    name: ClassVar[str] = "events"
    output_folder: ClassVar[str] = "events"
    order: ClassVar[float | None] = 70
    schema: ClassVar[pa.Schema] = schemas.EVENTS
    adds: ClassVar[list[pa.Field]] = schemas.EVENT_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "path", "start_s", "end_s")
    uses_actor: ClassVar[bool] = True

    cfg: EventsConfig
    _pose: Any = field(default=None, init=False, repr=False)
    _faces: Any = field(default=None, init=False, repr=False)
    _hands: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def gpu_need(self) -> GpuNeed:
        pose = self.cfg.pose
        uses = backend_class("pose", pose.kind).uses_gpu
        return GpuNeed.for_device(pose.device) if uses else GpuNeed()

    def setup(self, worker: Worker) -> None:
        if self._pose is None:
            pose = make_backend("pose", self.cfg.pose)
            pose.setup(
                worker.device(self.cfg.pose.device, f"{self.name} pose={self.cfg.pose.kind}")
            )
            self._faces = MediapipeFaces(DetectorConfig(kind="mediapipe"))
            self._faces.setup()
            if self.cfg.hands:
                self._hands = MediapipeHands()
                self._hands.setup()
            self._pose = pose

    def teardown(self) -> None:
        self._pose = self._faces = self._hands = None

    def preflight(self) -> None:
        make_backend("pose", self.cfg.pose).check()
        MediapipeFaces(DetectorConfig(kind="mediapipe")).setup()
        if self.cfg.hands:
            MediapipeHands().setup()

    @property
    def model_names(self) -> str:
        hands = " hands=mediapipe" if self.cfg.hands else ""
        return f"pose={self.cfg.pose.model or self.cfg.pose.kind} face=mediapipe{hands}"

    @property
    def rules(self) -> EventRules:
        c = self.cfg
        return EventRules(c.min_gesture_s, c.wave_swings, c.approach_growth, c.leave_absent_s,
                          c.rejoin_s, c.pose.min_visibility)  # fmt: skip

    def clip_events(self, clip: dict[str, Any]) -> tuple[list[dict[str, Any]], float]:
        """The clip's events and the frame rate they were read at."""
        frames, used = self.clip_frames(clip)
        return detect_events(frames, used, self.rules), used

    def clip_frames(self, clip: dict[str, Any]) -> tuple[list[Frame], float]:
        """What the models saw in each frame read, and the frame rate they were read at."""
        fps = clip.get("fps") or 25.0
        used = fps / max(1, round(fps / self.cfg.fps))
        times, poses, faces, hands = [], [], [], []
        body, min_visibility = self._pose.body, self.cfg.pose.min_visibility
        with self._lock:
            for t, frame in iter_clip_frames(clip, self.cfg.max_side, self.cfg.fps):
                times.append(t)
                poses.append(self._pose.keypoints(frame))
                look = self._hands is not None and wrist_up(poses[-1], body, min_visibility)
                hands.append(self._hands.shapes(frame) if look else None)
                found = self._faces.detect(frame)
                if found:
                    best = max(found, key=lambda d: d.area)
                    faces.append(((best.y2 - best.y1) / frame.shape[0], best.score))
                else:
                    faces.append(None)
        return frames_from(times, poses, faces, body, min_visibility, hands), used

    def process(self, batch: pa.Table) -> pa.Table:
        rows = []
        for clip in batch.to_pylist():
            try:
                events, used = self.clip_events(clip)
            except RuntimeError as exc:
                rows.append({**clip, "event_models": self.model_names,
                             **rejected("decode_failed", str(exc))})  # fmt: skip
                continue
            rows.append({**clip, "events": events, "event_fps": used,
                         "event_models": self.model_names, **kept()})  # fmt: skip
        return self.table(rows)
