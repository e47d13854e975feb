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

from curation import schemas
from curation.backends import Generation, Prompt
from curation.backends.base import prompt_hash
from curation.config_models import CaptionerConfig, DetailedCaptionConfig
from stages.base import kept, rejected
from stages.model_stage import (
    NOT_ASKED,
    ModelCall,
    ModelStage,
    Outcome,
    answer_problem,
    outcome_problem,
)


@dataclass(kw_only=True)
class DetailedCaptionStage(ModelStage):
    name: ClassVar[str] = "detailed_caption"
    output_folder: ClassVar[str] = "detailed"
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
