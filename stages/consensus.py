"""consensus: one caption holding only what the candidate captions agree on (the dual check).

With `method: llm` (the paper: Qwen2.5-72B-Instruct) an LLM reads the candidates and writes
the consensus; with `method: extractive` no LLM is used and the consensus is the candidate
sentences that at least `min_support` captioners wrote (curation/consensus.py). Either way
the consensus is then scored against the candidates by sentence embeddings, independently of
the LLM: `agreement` below `min_agreement` is rejected as `unsupported_consensus`. Empty
output and refusals are retried, then rejected (`empty_consensus`, `refused`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from curation.backends import Generation, Prompt
from curation.backends.base import BackendConfig, check_model_available, prompt_hash
from curation.consensus import ConsensusScorer
from curation.core import schemas
from curation.core.config import REFUSALS, Resources, Section
from curation.embed import CaptionEmbedder, resolve_model
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


def candidate_texts(clip: dict[str, Any]) -> list[str]:
    return [c["text"] for c in clip["candidates"] or [] if c["text"]]


@dataclass(kw_only=True)
class ConsensusStage(ModelStage):
    name: ClassVar[str] = "consensus"
    output_folder: ClassVar[str] = "consensus"
    order: ClassVar[float | None] = 120
    schema: ClassVar[pa.Schema] = schemas.CONSENSUS
    adds: ClassVar[list[pa.Field]] = schemas.CONSENSUS_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "candidates")
    retryable_reasons: ClassVar[frozenset[str]] = frozenset({"consensus_failed"})

    cfg: ConsensusConfig
    _scorer: ConsensusScorer | None = field(default=None, init=False, repr=False)

    @classmethod
    def check_config(cls, config: Any) -> None:
        detailed, consensus = config.detailed_caption, config.consensus
        if detailed.min_candidates < consensus.min_support:
            raise ValueError(
                f"detailed_caption.min_candidates ({detailed.min_candidates}) is below "
                f"consensus.min_support ({consensus.min_support}): such clips could never agree"
            )

    def verdict(self, gen: Generation) -> tuple[str, str] | None:
        return answer_problem(gen, self.cfg.refusal_markers, "consensus_failed", "empty_consensus")

    def prompt_for(self, clip: dict[str, Any], images: list[bytes]) -> Prompt:
        listed = "\n\n".join(
            f"Description {i}:\n{text}" for i, text in enumerate(candidate_texts(clip), 1)
        )
        text = self.cfg.prompt.format(captions=listed)
        return Prompt(text, [], self.cfg.system, key=clip["clip_id"])

    def calls(self) -> list[ModelCall]:
        if self.cfg.method == "extractive":
            return []
        return [ModelCall("consensus", self.cfg.backend, self.prompt_for, self.verdict)]

    def preflight(self) -> None:
        super().preflight()
        check_model_available(resolve_model(self.cfg.embedder))

    @property
    def scorer(self) -> ConsensusScorer:
        # Loaded where finish() runs: the worker that holds the last model of the stage.
        if self._scorer is None:
            device = self._worker.device(self.cfg.device, f"{self.name} embedder")
            embedder = CaptionEmbedder(self.cfg.embedder, device)
            embedder.load()
            self._scorer = ConsensusScorer(embedder, self.cfg.match, self.cfg.min_support)
        return self._scorer

    def finish_devices(self) -> list[str | None]:
        return [self.cfg.device]

    def teardown(self) -> None:
        super().teardown()
        self._scorer = None

    def _consensus(self, clip: dict[str, Any], answer: Outcome | None):
        """(text, attempts, problem) for one clip."""
        if answer is None:
            return self.scorer.extractive_consensus(candidate_texts(clip)), 0, None
        gen, attempts = answer
        problem = self.verdict(gen)
        return (None if problem else gen.text.strip()), attempts, problem

    def finish(self, clips: list[dict[str, Any]], outcomes: list[list[Outcome]]) -> pa.Table:
        cfg = self.cfg
        llm = cfg.method == "llm"
        key = prompt_hash(cfg.system or "", cfg.prompt) if llm else None
        rows = []
        for i, clip in enumerate(clips):
            text, attempts, problem = self._consensus(clip, outcomes[0][i] if llm else None)
            score = None
            if problem is None and not text:
                problem = ("empty_consensus", "no sentence is supported by enough candidates")
            if problem is None:
                score = self.scorer.agreement(text, candidate_texts(clip))
                if score.score < cfg.min_agreement:
                    problem = (
                        "unsupported_consensus",
                        f"agreement {score.score:.3f} < min_agreement {cfg.min_agreement} "
                        f"({score.supported} of {score.sentences} parts supported)",
                    )
            rows.append(
                {**clip, "consensus": text,
                 "consensus_model": cfg.backend.model if llm else "extractive",
                 "consensus_prompt_hash": key, "consensus_attempts": attempts,
                 "agreement": score.score if score else None,
                 "consensus_sentences": score.sentences if score else None,
                 "supported_sentences": score.supported if score else None,
                 **(rejected(*problem) if problem else kept())}
            )  # fmt: skip
        return self.table(rows)
