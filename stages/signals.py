"""signals: what a clip's people say and do: speech, transcript, lip sync, pose and framing.

Per clip: its sound is read on the clip's own timeline (curation/media/audio.py), the VAD
finds the speech (`speech_s`, `speech_segments`), and only that speech is transcribed, with
word times. When there is speech and the boxes saw a face, the face's mouth is followed
frame by frame and matched against the speech's loudness over a range of audio offsets
(`lip_sync`, `lip_sync_offset_s`). Body keypoints are found on `frames` sampled frames
(`keypoints`, `pose_visible`) and, with the boxes, give the `framing`. Signals are scores:
no clip is dropped for them (the exports and instructions choose by them); only a clip
whose sound or frames cannot be decoded is rejected, and one whose sound the scene pass found
damaged (`audio_damaged_s`, `corrupt_audio`: its speech, transcript and lip sync would be
wrong) when more than `max_damaged_audio_s` of it is (None: never). Seconds spent per signal
are reported in the shard statistics (`extra.seconds`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from curation.core import schemas
from curation.core.config import Resources, Section
from curation.core.worker import GpuNeed, Worker
from curation.media.audio import RATE, AudioError, clip_audio
from curation.media.frames import clip_frames, iter_clip_frames
from curation.signals import backend_class, make_backend
from curation.signals.config import AsrConfig, LipSyncConfig, PoseConfig, VadConfig
from curation.signals.framing import clip_framing, pose_visible
from stages.base import Stage, kept, rejected, with_extra

SIGNALS = ("vad", "asr", "lip_sync", "pose")


class SignalsConfig(Section):
    """Human signals of every clip (stages/signals.py)."""

    vad: VadConfig = VadConfig()
    asr: AsrConfig | None = AsrConfig()
    lip_sync: LipSyncConfig | None = LipSyncConfig()
    pose: PoseConfig | None = PoseConfig()
    frames: int = Field(8, ge=1, description="frames sampled uniformly for pose and framing")
    close_up_face: float = Field(
        0.3, gt=0, le=1, description="framing: a face this share of the frame height is a close-up"
    )
    # A damaged AAC frame is 23 ms of wrong sound, a click; a tenth of a second takes syllables.
    max_damaged_audio_s: float | None = Field(
        0.1, ge=0, description="more sound the scene pass found damaged: corrupt_audio"
    )
    threads: int = Field(2, ge=1, description="clips decoded at once per worker")
    batch_size: int = Field(8, ge=1)
    resources: Resources = Resources(cpus=1, gpus="auto", concurrency=2)


@dataclass(kw_only=True)
class SignalsStage(Stage):
    name: ClassVar[str] = "signals"
    output_folder: ClassVar[str] = "signals"
    order: ClassVar[float | None] = 60
    schema: ClassVar[pa.Schema] = schemas.SIGNALS
    adds: ClassVar[list[pa.Field]] = schemas.SIGNAL_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "path", "start_s", "end_s", "has_audio")
    also_reads: ClassVar[tuple[str, ...]] = ("audio_damaged_s",)
    uses_actor: ClassVar[bool] = True

    cfg: SignalsConfig
    _models: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    # The models are not all thread-safe: clips are decoded in threads, measured in turn.
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def configs(self) -> dict[str, Any]:
        return {s: c for s in SIGNALS if (c := getattr(self.cfg, s)) is not None}

    def gpu_need(self) -> GpuNeed:
        return GpuNeed.most([GpuNeed.for_device(c.device) for s, c in self.configs.items()
                             if backend_class(s, c.kind).uses_gpu])  # fmt: skip

    def setup(self, worker: Worker) -> None:
        if not self._models:
            for signal, config in self.configs.items():
                model = make_backend(signal, config)
                model.setup(worker.device(config.device, f"{self.name} {signal}={config.kind}"))
                self._models[signal] = model

    def teardown(self) -> None:
        self._models = {}

    def preflight(self) -> None:
        # Missing packages or weights fail here, before any work.
        for signal, config in self.configs.items():
            make_backend(signal, config).check()

    @property
    def model_names(self) -> str:
        return " ".join(f"{s}={getattr(c, 'model', None) or c.kind}"
                        for s, c in self.configs.items())  # fmt: skip

    def _read(self, clip: dict[str, Any]) -> tuple[np.ndarray, list[np.ndarray], list[float]] | str:
        """The clip's sound and its sampled frames (in a thread: ffmpeg does the work)."""
        try:
            audio = clip_audio(clip)
        except AudioError as exc:
            return f"audio: {exc}"
        if self.cfg.pose is None:
            return audio, [], []
        try:
            frames, times = clip_frames(clip, self.cfg.frames, self.cfg.pose.max_side)
        except RuntimeError as exc:
            return str(exc)
        return audio, frames, times

    def measure(
        self,
        clip: dict[str, Any],
        audio: np.ndarray,
        frames: list[np.ndarray],
        times: list[float],
        seconds: Counter,
    ) -> dict[str, Any]:
        """The signal columns of one clip."""
        out: dict[str, Any] = {"signal_models": self.model_names, "transcript": None,
                               "transcript_language": None, "transcript_words": [],
                               "lip_sync": None, "lip_sync_offset_s": None,
                               "lip_sync_raw": None}  # fmt: skip
        started = time.perf_counter()
        segments = self._models["vad"].speech(audio, RATE) if clip.get("has_audio") else []
        seconds["vad"] += time.perf_counter() - started
        out["speech_segments"] = [[round(a, 3), round(b, 3)] for a, b in segments]
        out["speech_s"] = round(sum(b - a for a, b in segments), 3)

        if segments and "asr" in self._models:
            started = time.perf_counter()
            said = self._models["asr"].transcribe(audio, RATE, segments)
            seconds["asr"] += time.perf_counter() - started
            out.update(transcript=said.text or None, transcript_language=said.language,
                       transcript_words=[vars(w) for w in said.words])  # fmt: skip

        face_seen = clip.get("frames_with_face") is None or clip["frames_with_face"] > 0
        if segments and face_seen and "lip_sync" in self._models:
            started = time.perf_counter()
            cfg = self.cfg.lip_sync
            assert cfg is not None
            fps = clip.get("fps") or 25.0
            used_fps = fps / max(1, round(fps / cfg.fps))
            sync = self._models["lip_sync"].score(
                iter_clip_frames(clip, cfg.max_side, cfg.fps), used_fps, audio, RATE
            )
            seconds["lip_sync"] += time.perf_counter() - started
            if sync is not None:
                out.update(lip_sync=sync.score, lip_sync_offset_s=sync.offset_s,
                           lip_sync_raw=sync.raw)  # fmt: skip

        poses: list[list[Any]] = [[] for _ in frames]
        body: tuple[int, ...] = ()
        # No pose where the boxes saw nobody (a pose model fits bodies to empty scenes too).
        human_seen = clip.get("frames_with_human") is None or clip["frames_with_human"] > 0
        if "pose" in self._models:
            model = self._models["pose"]
            body, out["pose_layout"] = model.body, model.layout
            if human_seen:
                started = time.perf_counter()
                poses = [model.keypoints(f) for f in frames]
                seconds["pose"] += time.perf_counter() - started
        out["keypoints"] = [
            {"frame": i, "t_s": round(t, 4), "points": [vars(p) for p in points]}
            for i, (t, points) in enumerate(zip(times, poses, strict=True))
        ]
        min_vis = self.cfg.pose.min_visibility if self.cfg.pose else 0.5
        out["pose_visible"] = pose_visible(poses, body, min_vis)
        out["framing"] = clip_framing(
            poses,
            body,
            clip.get("boxes") or [],
            int(clip.get("frames_sampled") or len(frames)),
            min_vis,
            self.cfg.close_up_face,
        )
        return out

    def sound_damage(self, clip: dict[str, Any]) -> str | None:
        """Why the clip's sound is too damaged to measure (None: it is not)."""
        limit, damaged = self.cfg.max_damaged_audio_s, clip.get("audio_damaged_s") or 0.0
        if limit is None or damaged <= limit:
            return None
        return (f"{damaged:.2f} s of its sound could not be decoded (see decode_note), "
                f"> signals.max_damaged_audio_s {limit}")  # fmt: skip

    def process(self, batch: pa.Table) -> pa.Table:
        clips = batch.to_pylist()
        damaged = [self.sound_damage(c) for c in clips]  # these are not decoded at all
        seconds: Counter = Counter()
        started = time.perf_counter()
        reads = self.map_rows(self._read, [c for c, d in zip(clips, damaged, strict=True) if not d],
                              self.cfg.threads)  # fmt: skip
        seconds["decode"] += time.perf_counter() - started
        inputs = iter(reads)
        rows = []
        for clip, why in zip(clips, damaged, strict=True):
            if why:
                rows.append({**clip, "signal_models": self.model_names,
                             **rejected("corrupt_audio", why)})  # fmt: skip
                continue
            read = next(inputs)
            if isinstance(read, str):
                rows.append({**clip, "signal_models": self.model_names,
                             **rejected("decode_failed", read)})  # fmt: skip
                continue
            with self._lock:
                signals = self.measure(clip, *read, seconds)
            rows.append({**clip, **signals, **kept()})
        extra = {"seconds": {k: round(v, 3) for k, v in seconds.items()}}
        return with_extra(self.table(rows), extra)
