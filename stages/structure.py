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

from curation import schemas
from curation.backends import BackendConfig, Generation, Prompt
from curation.backends.base import check_model_available, prompt_hash
from curation.embed import CaptionEmbedder, resolve_model
from curation.instructions.fields import FieldsError, describe_fields, json_schema, parse_fields
from curation.instructions.grounding import ground_fields
from stages.base import kept, rejected
from stages.model_stage import ModelCall, ModelStage, Outcome, answer_problem


@dataclass(kw_only=True)
class StructureStage(ModelStage):
    name: ClassVar[str] = "structure"
    output_folder: ClassVar[str] = "structured"
    schema: ClassVar[pa.Schema] = schemas.STRUCTURED
    adds: ClassVar[list[pa.Field]] = schemas.STRUCTURE_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "consensus")
    uses_actor: ClassVar[bool] = True
    retryable_reasons: ClassVar[frozenset[str]] = frozenset({"fields_failed", "invalid_fields"})

    backend: BackendConfig
    prompt: str
    system: str | None = None
    max_field_chars: int = 300
    refusal_markers: list[str] = field(default_factory=list)
    grounding: float = 0.3
    embedder: str
    device: str | None = None
    batch_size: int = 16
    _embedder: CaptionEmbedder | None = field(default=None, init=False, repr=False)

    def verdict(self, gen: Generation) -> tuple[str, str] | None:
        problem = answer_problem(gen, self.refusal_markers, "fields_failed", "invalid_fields")
        if problem is None:
            try:
                parse_fields(gen.text)
            except FieldsError as exc:
                return "invalid_fields", str(exc)
        return problem

    def prompt_for(self, clip: dict[str, Any]) -> Prompt:
        text = self.prompt.format(fields=describe_fields(), caption=clip["consensus"])
        return Prompt(text, [], self.system, json_schema(self.max_field_chars), clip["clip_id"])

    def preflight(self) -> None:
        super().preflight()
        if self.grounding > 0:
            check_model_available(resolve_model(self.embedder))

    def ground(self, fields: dict[str, Any], caption: str) -> tuple[dict[str, Any], list[str]]:
        if self.grounding <= 0:
            return fields, []
        if self._embedder is None:  # where finish() runs: the worker, or the driver after vLLM
            self._embedder = CaptionEmbedder(self.embedder, self.device)
            self._embedder.load()
        return ground_fields(fields, caption, self._embedder, self.grounding)

    def calls(self) -> list[ModelCall]:
        return [ModelCall("structure", self.backend, 0, self.prompt_for, self.verdict)]

    def finish(self, clips: list[dict[str, Any]], outcomes: list[list[Outcome]]) -> pa.Table:
        key = prompt_hash(self.system or "", self.prompt, str(self.max_field_chars))
        rows = []
        for clip, (gen, attempts) in zip(clips, outcomes[0], strict=True):
            problem = self.verdict(gen)
            fields, cleared = None, None
            if problem is None:
                fields, cleared = self.ground(parse_fields(gen.text), clip["consensus"])
            rows.append(
                {**clip, "fields": fields, "fields_ungrounded": cleared,
                 "fields_model": self.backend.model, "fields_prompt_hash": key,
                 "fields_attempts": attempts, **(rejected(*problem) if problem else kept())}
            )  # fmt: skip
        return self.table(rows)
