"""brief_caption: the paper's brief, general-context caption of each clip, by a VLM.

Frames are sampled uniformly from the clip file (or the virtual clip's range of its source)
by the stage's CPU workers, sent to the configured backend, and the answer is checked: empty
output and refusals are asked again like errors, up to `attempts` tries; a clip that never
gets a caption is kept in the table with `kept=False` and the reason (`caption_failed`,
`empty_caption`, `refused`). Those reasons are retryable: re-running the command retries
exactly those clips; a clip whose frames cannot be decoded is `decode_failed`, not retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field

from curation.backends import Generation, Prompt
from curation.backends.base import BackendConfig, prompt_hash
from curation.core import schemas
from curation.core.config import REFUSALS, Resources, Section
from stages.base import kept, rejected
from stages.model_stage import (
    MODEL,
    PREPARE,
    ModelCall,
    ModelStage,
    Outcome,
    answer_problem,
    outcome_problem,
)


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


@dataclass(kw_only=True)
class BriefCaptionStage(ModelStage):
    name: ClassVar[str] = "brief_caption"
    output_folder: ClassVar[str] = "captions"
    order: ClassVar[float | None] = 80
    schema: ClassVar[pa.Schema] = schemas.CAPTIONS
    adds: ClassVar[list[pa.Field]] = schemas.CAPTION_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "path", "clip_path", "start_s", "end_s")
    retryable_reasons: ClassVar[frozenset[str]] = frozenset(
        {"caption_failed", "empty_caption", "refused"}
    )

    cfg: BriefCaptionConfig

    def verdict(self, gen: Generation) -> tuple[str, str] | None:
        return answer_problem(gen, self.cfg.refusal_markers, "caption_failed", "empty_caption")

    def prompt_for(self, clip: dict[str, Any], images: list[bytes]) -> Prompt:
        return Prompt(self.cfg.prompt, images, self.cfg.system, key=clip["clip_id"])

    def calls(self) -> list[ModelCall]:
        cfg = self.cfg
        return [
            ModelCall("brief", cfg.backend, self.prompt_for, self.verdict, cfg.frames, cfg.max_side)
        ]

    def finish(self, clips: list[dict[str, Any]], outcomes: list[list[Outcome]]) -> pa.Table:
        cfg = self.cfg
        key = prompt_hash(cfg.system or "", cfg.prompt, str(cfg.frames), str(cfg.max_side))
        rows = []
        for clip, (gen, attempts) in zip(clips, outcomes[0], strict=True):
            problem = outcome_problem((gen, attempts), self.verdict)
            rows.append(
                {
                    **clip,
                    "brief_caption": None if problem else gen.text.strip(),
                    "caption_model": cfg.backend.model,
                    "caption_prompt_hash": key,
                    "caption_prompt_tokens": gen.prompt_tokens,
                    "caption_completion_tokens": gen.completion_tokens,
                    "caption_attempts": attempts,
                    **(rejected(*problem) if problem else kept()),
                }
            )
        return self.table(rows)
