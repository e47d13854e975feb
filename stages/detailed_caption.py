"""detailed_caption: several VLMs each write a detailed caption of the clip (the candidates).

The paper used Qwen2-VL-72B and InternVideo2-Chat; here any two or more models, each on any
backend, are listed in config. Every model's answer is recorded (text, or the reason it has
none); a clip with fewer than `min_candidates` usable captions is rejected as
`too_few_candidates` (retryable: a re-run asks again). The consensus stage merges them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field, model_validator

from curation.backends import Generation, Prompt
from curation.backends.base import BackendConfig, prompt_hash
from curation.core import schemas
from curation.core.config import REFUSALS, Resources, Section
from stages.base import kept, rejected
from stages.model_stage import (
    MODEL,
    NOT_ASKED,
    PREPARE,
    ModelCall,
    ModelStage,
    Outcome,
    answer_problem,
    outcome_problem,
)


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


@dataclass(kw_only=True)
class DetailedCaptionStage(ModelStage):
    name: ClassVar[str] = "detailed_caption"
    output_folder: ClassVar[str] = "detailed"
    order: ClassVar[float | None] = 110
    schema: ClassVar[pa.Schema] = schemas.DETAILED
    adds: ClassVar[list[pa.Field]] = schemas.DETAILED_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "path", "clip_path", "start_s", "end_s")
    retryable_reasons: ClassVar[frozenset[str]] = frozenset({"too_few_candidates"})

    cfg: DetailedCaptionConfig

    def verdict(self, gen: Generation) -> tuple[str, str] | None:
        return answer_problem(gen, self.cfg.refusal_markers, "caption_failed", "empty_caption")

    def calls(self) -> list[ModelCall]:
        return [
            ModelCall(m.name, m.backend, self._prompt_fn(m), self.verdict, m.frames, m.max_side)
            for m in self.cfg.models
        ]

    def _prompt_fn(self, model: CaptionerConfig):
        text = model.prompt or self.cfg.prompt

        def prompt_for(clip: dict[str, Any], images: list[bytes]) -> Prompt:
            return Prompt(text, images, model.system, key=clip["clip_id"])

        return prompt_for

    def finish(self, clips: list[dict[str, Any]], outcomes: list[list[Outcome]]) -> pa.Table:
        cfg = self.cfg
        hashes = [
            prompt_hash(m.system or "", m.prompt or cfg.prompt, str(m.frames), str(m.max_side))
            for m in cfg.models
        ]
        rows = []
        for i, clip in enumerate(clips):
            candidates = []
            for model, key, answers in zip(cfg.models, hashes, outcomes, strict=True):
                gen, attempts = answers[i]
                problem = outcome_problem(answers[i], self.verdict)
                candidates.append(
                    {"model": model.name, "text": None if problem else gen.text.strip(),
                     "error": f"{problem[0]}: {problem[1]}" if problem else None,
                     "prompt_hash": key, "completion_tokens": gen.completion_tokens,
                     "attempts": attempts}
                )  # fmt: skip
            ok = sum(c["text"] is not None for c in candidates)
            verdict = kept()
            if all(c["attempts"] == 0 for c in candidates) and not ok:  # nothing to show them
                verdict = rejected(NOT_ASKED, str(candidates[0]["error"])[:500])
            elif ok < cfg.min_candidates:
                failed = "; ".join(f"{c['model']}: {c['error']}" for c in candidates if c["error"])
                verdict = rejected(
                    "too_few_candidates", f"{ok} usable of {len(candidates)} ({failed})"[:500]
                )
            rows.append({**clip, "candidates": candidates, "candidates_ok": ok, **verdict})
        return self.table(rows)
