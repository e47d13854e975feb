"""brief_caption: the paper's brief, general-context caption of each clip, by a VLM.

Frames are sampled uniformly from the clip file (or the virtual clip's range of its source),
sent to the configured backend, and the answer is checked: empty output and refusals are
retried like errors, up to `attempts` tries; a clip that never gets a caption is kept in the
table with `kept=False` and the reason (`caption_failed`, `empty_caption`, `refused`). Those
reasons are retryable: re-running the command retries exactly those clips.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from curation import schemas
from curation.backends import BackendConfig, Generation, Prompt
from curation.backends.base import prompt_hash
from curation.media.frames import clip_frames
from stages.base import kept, rejected
from stages.model_stage import ModelCall, ModelStage, Outcome, answer_problem


@dataclass(kw_only=True)
class BriefCaptionStage(ModelStage):
    name: ClassVar[str] = "brief_caption"
    output_folder: ClassVar[str] = "captions"
    schema: ClassVar[pa.Schema] = schemas.CAPTIONS
    adds: ClassVar[list[pa.Field]] = schemas.CAPTION_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "path", "clip_path", "start_s", "end_s")
    uses_actor: ClassVar[bool] = True
    retryable_reasons: ClassVar[frozenset[str]] = frozenset(
        {"caption_failed", "empty_caption", "refused"}
    )

    backend: BackendConfig
    prompt: str
    system: str | None = None
    frames: int = 8
    max_side: int = 448
    refusal_markers: list[str] = field(default_factory=list)
    batch_size: int = 8

    def verdict(self, gen: Generation) -> tuple[str, str] | None:
        return answer_problem(gen, self.refusal_markers, "caption_failed", "empty_caption")

    def prompt_for(self, clip: dict[str, Any]) -> Prompt:
        """The prompt for one clip; raises RuntimeError when no frame can be sampled."""
        frames = clip_frames(clip, self.frames, self.max_side)[0]
        return Prompt(self.prompt, frames, self.system, key=clip["clip_id"])

    def calls(self) -> list[ModelCall]:
        return [ModelCall("brief", self.backend, self.frames, self.prompt_for, self.verdict)]

    def finish(self, clips: list[dict[str, Any]], outcomes: list[list[Outcome]]) -> pa.Table:
        key = prompt_hash(self.system or "", self.prompt, str(self.frames), str(self.max_side))
        rows = []
        for clip, (gen, attempts) in zip(clips, outcomes[0], strict=True):
            problem = self.verdict(gen)
            rows.append(
                {
                    **clip,
                    "brief_caption": None if problem else gen.text.strip(),
                    "caption_model": self.backend.model,
                    "caption_prompt_hash": key,
                    "caption_prompt_tokens": gen.prompt_tokens,
                    "caption_completion_tokens": gen.completion_tokens,
                    "caption_attempts": attempts,
                    **(rejected(*problem) if problem else kept()),
                }
            )
        return self.table(rows)
