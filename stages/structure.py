"""structure: an LLM turns each consensus caption into structured fields (face/body/interaction).

The prompt carries the JSON schema of curation/instructions/fields.py and every backend
decodes under it (vLLM structured outputs, OpenAI `response_format`, xgrammar locally), so
the answer parses; it is validated all the same. An answer that does not parse or validate
is retried like an error, then recorded as `invalid_fields` (retryable, as is
`fields_failed`). Fields the caption does not describe stay empty: the prompt says so, a
grounding check clears any value the caption does not support (`fields_ungrounded`,
curation/instructions/grounding.py), and the instruction stage asks nothing about an empty
field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field, model_validator

from curation.backends import Generation, Prompt
from curation.backends.base import BackendConfig, check_model_available, prompt_hash
from curation.core import schemas
from curation.core.config import REFUSALS, Resources, Section
from curation.embed import CaptionEmbedder, resolve_model
from curation.instructions.fields import FieldsError, describe_fields, json_schema, parse_fields
from curation.instructions.grounding import ground_fields
from stages.base import kept, rejected
from stages.model_stage import (
    MODEL,
    PREPARE,
    ModelCall,
    ModelStage,
    Outcome,
    answer_problem,
    check_template,
)


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


@dataclass(kw_only=True)
class StructureStage(ModelStage):
    name: ClassVar[str] = "structure"
    output_folder: ClassVar[str] = "structured"
    order: ClassVar[float | None] = 130
    schema: ClassVar[pa.Schema] = schemas.STRUCTURED
    adds: ClassVar[list[pa.Field]] = schemas.STRUCTURE_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "consensus")
    retryable_reasons: ClassVar[frozenset[str]] = frozenset({"fields_failed", "invalid_fields"})

    cfg: StructureConfig
    _embedder: CaptionEmbedder | None = field(default=None, init=False, repr=False)

    def verdict(self, gen: Generation) -> tuple[str, str] | None:
        problem = answer_problem(gen, self.cfg.refusal_markers, "fields_failed", "invalid_fields")
        if problem is None:
            try:
                parse_fields(gen.text)
            except FieldsError as exc:
                return "invalid_fields", str(exc)
        return problem

    def prompt_for(self, clip: dict[str, Any], images: list[bytes]) -> Prompt:
        cfg = self.cfg
        text = cfg.prompt.format(fields=describe_fields(), caption=clip["consensus"])
        return Prompt(text, [], cfg.system, json_schema(cfg.max_field_chars), clip["clip_id"])

    def preflight(self) -> None:
        super().preflight()
        if self.cfg.grounding > 0:
            check_model_available(resolve_model(self.cfg.embedder))

    def ground(self, fields: dict[str, Any], caption: str) -> tuple[dict[str, Any], list[str]]:
        cfg = self.cfg
        if cfg.grounding <= 0:
            return fields, []
        if self._embedder is None:  # where finish() runs: the worker holding the LLM
            device = self._worker.device(cfg.device, f"{self.name} embedder")
            self._embedder = CaptionEmbedder(cfg.embedder, device)
            self._embedder.load()
        return ground_fields(fields, caption, self._embedder, cfg.grounding)

    def calls(self) -> list[ModelCall]:
        return [ModelCall("structure", self.cfg.backend, self.prompt_for, self.verdict)]

    def finish_devices(self) -> list[str | None]:
        return [self.cfg.device]

    def teardown(self) -> None:
        super().teardown()
        self._embedder = None

    def finish(self, clips: list[dict[str, Any]], outcomes: list[list[Outcome]]) -> pa.Table:
        cfg = self.cfg
        key = prompt_hash(cfg.system or "", cfg.prompt, str(cfg.max_field_chars))
        rows = []
        for clip, (gen, attempts) in zip(clips, outcomes[0], strict=True):
            problem = self.verdict(gen)
            fields, cleared = None, None
            if problem is None:
                fields, cleared = self.ground(parse_fields(gen.text), clip["consensus"])
            rows.append(
                {**clip, "fields": fields, "fields_ungrounded": cleared,
                 "fields_model": cfg.backend.model, "fields_prompt_hash": key,
                 "fields_attempts": attempts, **(rejected(*problem) if problem else kept())}
            )  # fmt: skip
        return self.table(rows)
