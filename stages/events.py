"""events: timed visual events of each clip (curation/signals/events.py): a hand raised, a
wave, a stop gesture, pointing, someone approaching the camera or leaving.

Frames are read at `events.fps` (5) over the whole clip, decoded as they are used; on each,
the pose model finds the body joints and BlazeFace the faces. No clip is dropped for its
events: they are what `make export FORMAT=vispeak` builds its streaming items from.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from curation import schemas
from curation.config_signals import EventsConfig
from curation.detect.base import DetectorConfig
from curation.detect.mediapipe_faces import MediapipeFaces
from curation.media.frames import iter_clip_frames
from curation.signals import backend_class, make_backend
from curation.signals.events import EventRules, detect_events, frames_from
from curation.worker import GpuNeed, Worker
from stages.base import Stage, kept, rejected


@dataclass(kw_only=True)
class EventsStage(Stage):
    name: ClassVar[str] = "events"
    output_folder: ClassVar[str] = "events"
    schema: ClassVar[pa.Schema] = schemas.EVENTS
    adds: ClassVar[list[pa.Field]] = schemas.EVENT_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "path", "start_s", "end_s")
    uses_actor: ClassVar[bool] = True

    cfg: EventsConfig
    _pose: Any = field(default=None, init=False, repr=False)
    _faces: Any = field(default=None, init=False, repr=False)
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
            self._pose = pose

    def teardown(self) -> None:
        self._pose = self._faces = None

    def preflight(self) -> None:
        make_backend("pose", self.cfg.pose).check()
        MediapipeFaces(DetectorConfig(kind="mediapipe")).setup()

    @property
    def model_names(self) -> str:
        return f"pose={self.cfg.pose.model or self.cfg.pose.kind} face=mediapipe"

    @property
    def rules(self) -> EventRules:
        c = self.cfg
        return EventRules(c.min_gesture_s, c.wave_swings, c.approach_growth, c.leave_absent_s,
                          c.rejoin_s, c.pose.min_visibility)  # fmt: skip

    def clip_events(self, clip: dict[str, Any]) -> tuple[list[dict[str, Any]], float]:
        """The clip's events and the frame rate they were read at."""
        fps = clip.get("fps") or 25.0
        used = fps / max(1, round(fps / self.cfg.fps))
        times, poses, faces = [], [], []
        with self._lock:
            for t, frame in iter_clip_frames(clip, self.cfg.max_side, self.cfg.fps):
                times.append(t)
                poses.append(self._pose.keypoints(frame))
                found = self._faces.detect(frame)
                if found:
                    best = max(found, key=lambda d: d.area)
                    faces.append(((best.y2 - best.y1) / frame.shape[0], best.score))
                else:
                    faces.append(None)
        body = self._pose.body
        frames = frames_from(times, poses, faces, body, self.cfg.pose.min_visibility)
        return detect_events(frames, used, self.rules), used

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
