"""Config section of the signals stage (stages/signals.py): speech, transcripts, lip sync,
pose and framing. Loaded through curation/config.py like every other section.

Each signal's model is a backend chosen by `kind` (curation/signals/): the defaults need no
download (packages that carry real weights); production models are named by `model`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from curation.config_base import Resources, Section


class _Backend(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    device: str | None = Field(None, description="None: the GPU the worker was given, else CPU")


class VadConfig(_Backend):
    """Voice activity: which stretches of a clip's audio are speech."""

    kind: Literal["silero"] = "silero"
    threshold: float = Field(0.5, gt=0, lt=1, description="speech probability of a speech frame")
    min_speech_s: float = Field(0.25, ge=0, description="shorter speech is not counted")
    min_silence_s: float = Field(0.1, ge=0, description="shorter pauses do not split speech")


class AsrConfig(_Backend):
    """Speech recognition of the stretches the VAD found (nothing is transcribed without)."""

    kind: Literal["faster_whisper"] = "faster_whisper"
    model: str = Field(
        "bundled:tiny.en",
        description="bundled:tiny.en (ships in a package, English only), a CTranslate2 "
        "model folder, or a faster-whisper name such as large-v3 (downloaded when online)",
    )
    language: str | None = Field(None, description="None: detected (multilingual models)")
    beam_size: int = Field(5, ge=1)
    compute_type: str = Field("default", description="int8, float16, ... (CTranslate2)")
    cpu_threads: int = Field(2, ge=0, description="CPU threads when on the CPU (0: all)")


class LipSyncConfig(_Backend):
    """Whether the visible face's mouth moves with the speech, and at what audio offset."""

    kind: Literal["landmarks", "syncnet"] = "landmarks"
    model: str | None = Field(
        None, description="syncnet: the released weights file (syncnet_v2.model); "
        "landmarks: not used (MediaPipe's face mesh ships in the package)",
    )  # fmt: skip
    fps: float = Field(25.0, gt=0, le=60, description="frames per second read for the mouth")
    max_side: int = Field(640, ge=64, description="longer side of those frames, pixels")
    max_offset_s: float = Field(1.5, gt=0, le=5, description="audio offsets searched, ±")
    min_overlap_s: float = Field(2.0, gt=0, description="shortest stretch scored at one offset")


class PoseConfig(_Backend):
    """Body keypoints on the sampled frames."""

    kind: Literal["mediapipe", "ultralytics"] = "mediapipe"
    model: str | None = Field(
        None, description="ultralytics: pose weights file or name (yolo11n-pose.pt); "
        "mediapipe: not used (BlazePose full ships in the package)",
    )  # fmt: skip
    score_threshold: float = Field(0.5, gt=0, lt=1, description="a person is detected above this")
    min_visibility: float = Field(0.5, gt=0, lt=1, description="a keypoint counts as visible")
    max_side: int = Field(640, ge=64, description="longer side of a sampled frame, pixels")


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
    threads: int = Field(2, ge=1, description="clips decoded at once per worker")
    batch_size: int = Field(8, ge=1)
    resources: Resources = Resources(cpus=1, gpus="auto", concurrency=2)


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
