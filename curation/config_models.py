"""Config sections of the stages that run models: boxes, captions, consensus, structure,
instructions. Loaded through curation/config.py like every other section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from curation.backends.base import BackendConfig
from curation.config_base import REFUSALS, Resources, Section
from curation.detect.base import FACE_KINDS, PERSON_KINDS, DetectorConfig

# Model stages: prompts (frames sampled, JPEG-encoded) are made by CPU tasks (`prepare`), and
# each model runs in its own pool of workers that hold it loaded (`resources`).
PREPARE = Resources(cpus=1, concurrency=4)
MODEL = Resources(cpus=1, gpus="auto", concurrency=1)


def check_template(prompt: str, **placeholders: str) -> None:
    """The prompt must use every placeholder and no other `{...}` (write `{{` for a brace)."""
    missing = [f"{{{k}}}" for k in placeholders if f"{{{k}}}" not in prompt]
    if missing:
        raise ValueError(f"prompt must contain {missing}")
    try:
        prompt.format(**placeholders)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"prompt has a placeholder other than {list(placeholders)} or a lone brace ({exc}); "
            "write {{ and }} for literal braces"
        ) from None


class BriefCaptionConfig(Section):
    """The paper's brief, general-context caption of each clip, by a VLM (Qwen2-VL family)."""

    backend: BackendConfig = BackendConfig(model="Qwen/Qwen2-VL-7B-Instruct", max_tokens=96)
    prompt: str = (
        "Describe the general context of this video in one or two sentences: who appears, "
        "what they are doing, and where."
    )
    system: str | None = None
    frames: int = Field(8, ge=1, description="frames sampled uniformly from each clip")
    max_side: int = Field(448, ge=28, description="longer side of a sampled frame, pixels")
    attempts: int = Field(3, ge=1, description="tries per clip on empty output, refusal or error")
    refusal_markers: list[str] = REFUSALS
    prepare: Resources = PREPARE
    resources: Resources = MODEL


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


class CaptionerConfig(Section):
    """One VLM of the detailed-caption stage."""

    name: str = Field(..., min_length=1, description="how the candidates column names it")
    backend: BackendConfig
    prompt: str | None = Field(None, description="None: detailed_caption.prompt")
    system: str | None = None
    frames: int = Field(16, ge=1)
    max_side: int = Field(448, ge=28)


class DetailedCaptionConfig(Section):
    """Detailed captions by several VLMs (the candidates for the consensus)."""

    prompt: str = (
        "Describe this video in detail. Describe the people: their appearance and clothing, "
        "their faces and facial expressions, their actions and poses, and how they interact "
        "with other people, with objects and with the environment. Describe only what is "
        "visible; do not guess."
    )
    models: list[CaptionerConfig] = [
        CaptionerConfig(
            name="qwen2-vl-7b",
            backend=BackendConfig(model="Qwen/Qwen2-VL-7B-Instruct", max_tokens=384),
        ),
        CaptionerConfig(
            name="llava-next-video-7b",
            backend=BackendConfig(model="llava-hf/LLaVA-NeXT-Video-7B-hf", max_tokens=384),
        ),
    ]
    min_candidates: int = Field(2, ge=1, description="fewer usable captions: rejected")
    attempts: int = Field(3, ge=1)
    refusal_markers: list[str] = REFUSALS
    prepare: Resources = PREPARE
    resources: Resources = MODEL

    @model_validator(mode="after")
    def _models(self) -> DetailedCaptionConfig:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"models: names must be unique ({names})")
        if len(self.models) < self.min_candidates:
            raise ValueError(
                f"models: {len(self.models)} listed, fewer than min_candidates {self.min_candidates}"
            )
        return self


class ConsensusConfig(Section):
    """One caption with only what the candidates agree on, scored independently of the LLM."""

    method: Literal["llm", "extractive"] = "llm"
    backend: BackendConfig = BackendConfig(model="Qwen/Qwen2.5-7B-Instruct", max_tokens=512)
    prompt: str = Field(
        "Below are descriptions of the same video, written independently by different models. "
        "Write one detailed description of the video that keeps only the content that at least "
        "two of the descriptions state or clearly agree on: the people's appearance, faces and "
        "expressions, actions and poses, and interactions with people, objects and the "
        "environment. Leave out everything that only one description mentions, resolve no "
        "contradiction by guessing, and add nothing. Answer with the description only.\n\n"
        "{captions}",
        description="{captions} is replaced by the numbered candidate captions",
    )
    system: str | None = None
    attempts: int = Field(3, ge=1)
    refusal_markers: list[str] = REFUSALS
    embedder: str = Field("bundled:all-MiniLM-L6-v2", description="scores the agreement")
    device: str | None = None
    match: float = Field(0.6, gt=0, le=1, description="cosine at which two sentences agree")
    min_support: int = Field(2, ge=1, description="candidates that must support a sentence")
    min_agreement: float = Field(0.75, ge=0, le=1, description="lower agreement is rejected")
    prepare: Resources = PREPARE
    resources: Resources = MODEL

    @model_validator(mode="after")
    def _prompt(self) -> ConsensusConfig:
        if self.method == "llm":
            check_template(self.prompt, captions="")
        return self


class StructureConfig(Section):
    """Structured face/body/interaction fields from the consensus caption, by an LLM."""

    backend: BackendConfig = BackendConfig(model="Qwen/Qwen2.5-7B-Instruct", max_tokens=512)
    prompt: str = Field(
        "Below is a description of a video. Fill in each field with what the description says "
        "about it, in a few words taken from or paraphrasing the description. When the "
        "description does not say it, the field is an empty string: never guess or add "
        "anything. Answer with JSON only.\n\nFields:\n{fields}\n\nDescription:\n{caption}",
        description="{fields}: the field list; {caption}: the consensus caption",
    )
    system: str | None = None
    max_field_chars: int = Field(300, ge=10, description="longest value of one field")
    attempts: int = Field(3, ge=1)
    refusal_markers: list[str] = REFUSALS
    grounding: float = Field(
        0.3, ge=0, le=1, description="a value less similar to the caption is cleared (0: off)"
    )
    embedder: str = Field("bundled:all-MiniLM-L6-v2", description="scores the grounding")
    device: str | None = None
    prepare: Resources = PREPARE
    resources: Resources = MODEL

    @model_validator(mode="after")
    def _prompt(self) -> StructureConfig:
        check_template(self.prompt, fields="", caption="")
        return self


class InstructionsConfig(Section):
    """Per-branch instructions (`make instructions`): templates plus LLM-written questions,
    a stage per branch run by the same runners as the pipeline (resumable, any backend)."""

    # The boxes are evidence: fields that mention a face are not enough for face pairs when
    # the detectors found none (clips without a boxes row are not checked).
    face_min_share: float = Field(
        0.25, ge=0, le=1, description="face pairs: share of sampled frames with a detected face"
    )
    body_min_share: float = Field(
        0.25, ge=0, le=1, description="body pairs: share of sampled frames with a detected person"
    )
    # Speaker-specific speech pairs: one face, lip-synced, sound in step (instructions/speech.py).
    speech_min_lip_sync: float = Field(
        0.5, ge=0, le=1, description="speech pairs: lowest lip_sync of the one visible face"
    )
    speech_max_offset_s: float = Field(
        0.2, ge=0, description="speech pairs: largest audio offset (lip_sync_offset_s)"
    )
    llm_questions: int = Field(
        1, ge=0, le=8, description="open questions an LLM writes per clip and branch (0: none)"
    )
    backend: BackendConfig = BackendConfig(model="Qwen/Qwen2.5-7B-Instruct", max_tokens=384)
    prompt: str = Field(
        "Facts about a person in a video, {about}:\n{facts}\n\nWrite {n} different questions a "
        "viewer could ask about this, each with its answer. Every answer must follow from the "
        "facts alone: add nothing they do not say. Answer with JSON only.",
        description="{about}: the branch, {facts}: its non-empty fields, {n}: llm_questions",
    )
    max_field_chars: int = Field(300, ge=10, description="longest question or answer")
    attempts: int = Field(3, ge=1)
    grounding: float = Field(
        0.3, ge=0, le=1, description="LLM answers less similar to the fields are dropped"
    )
    embedder: str = Field("bundled:all-MiniLM-L6-v2", description="scores the grounding")
    device: str | None = None
    prepare: Resources = PREPARE
    resources: Resources = MODEL

    @model_validator(mode="after")
    def _prompt(self) -> InstructionsConfig:
        check_template(self.prompt, about="", facts="", n="")
        return self
