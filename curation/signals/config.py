"""Settings of each signal's model (speech, transcripts, lip sync, pose): the signals library's
own, composed into the signals and events stages' sections (stages/signals.py, stages/events.py).

Each signal's model is a backend chosen by `kind` (curation/signals/): the defaults need no
download (packages that carry real weights); production models are named by `model`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
