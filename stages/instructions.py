"""instructions/<branch>: one branch's instruction pairs, a model stage like any other.

It reads the kept rows of `structured/` shard by shard and writes the pairs of each shard to
`instructions/<branch>/part-<shard>.parquet` (one row per pair, with its provenance), so
`make instructions` runs on either runner, resumes where it stopped and uses any backend.
Template pairs come from the structured fields (curation/instructions/generate.py); with
`llm_questions` > 0 an LLM also writes open questions from the branch's fields alone
(curation/instructions/llm_questions.py), asked again like any model stage's unusable answer.
The closed-set emotion answer letter goes round-robin over the shard's eligible clips, from a
start that depends on the shard, so letters come out balanced over the run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field, model_validator

from curation.backends import Generation, Prompt
from curation.backends.base import BackendConfig, check_model_available, prompt_hash
from curation.core.config import Resources, Section
from curation.embed import CaptionEmbedder, resolve_model
from curation.instructions.exports import largest_face_track
from curation.instructions.generate import eligible, facts, stable, template_pairs, unique
from curation.instructions.llm_questions import ABOUT, grounded, llm_pairs, pairs_schema
from curation.instructions.speech import speech_pairs, why_not
from stages.base import with_extra
from stages.model_stage import MODEL, PREPARE, ModelCall, ModelStage, Outcome, check_template

PAIRS = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("source_id", pa.string()),  # the validation split goes by source
        pa.field("branch", pa.string(), nullable=False),
        pa.field("turn", pa.int32()),
        pa.field("question", pa.string()),
        pa.field("answer", pa.string()),
        pa.field("kind", pa.string()),  # open | closed | caption | llm
        pa.field("field", pa.string()),
        pa.field("source", pa.string()),  # template id, or the model that wrote the pair
        pa.field("prompt_hash", pa.string()),
        pa.field("video", pa.string()),  # the clip file; null for virtual clips
        pa.field("has_audio", pa.bool_()),
        # [t_s, nx1, ny1, nx2, ny2] of the clip's largest face per sampled frame (exports'
        # face_track: the face crops a trainer can give the face branch); [] without faces
        pa.field("face_track", pa.list_(pa.list_(pa.float32(), 5))),
    ]
)


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
    val_share: float = Field(
        0.02, ge=0, lt=1,
        description="share of sources held out for validation (exports/val/), whole sources",
    )  # fmt: skip
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


@dataclass(kw_only=True)
class InstructionsStage(ModelStage):
    name: ClassVar[str] = "instructions"
    output_folder: ClassVar[str] = "instructions"
    curate: ClassVar[bool] = False  # `make instructions` runs it, one stage per branch
    schema: ClassVar[pa.Schema] = PAIRS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "fields")
    also_reads: ClassVar[tuple[str, ...]] = (
        "source_id", "consensus", "clip_path", "has_audio", "frames_sampled", "frames_with_face",
        "frames_with_person", "boxes", "transcript", "lip_sync", "lip_sync_offset_s",
    )  # fmt: skip
    # Branches whose pairs come from the clip's signals, with no LLM questions.
    signal_branches: ClassVar[frozenset[str]] = frozenset({"speech"})

    branch: str
    cfg: InstructionsConfig
    _embedder: CaptionEmbedder | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        # One stage per branch, each with its own folder and name in the statistics.
        self.name = f"instructions_{self.branch}"  # type: ignore[misc]
        self.output_folder = f"instructions/{self.branch}"  # type: ignore[misc]

    def bind(self, previous: pa.Schema) -> None:
        """The pairs' schema does not depend on the stage before."""

    @property
    def key(self) -> str:
        cfg = self.cfg
        return prompt_hash(cfg.prompt, str(cfg.llm_questions), str(cfg.max_field_chars))

    def verdict(self, gen: Generation) -> tuple[str, str] | None:
        if gen.error:
            return "questions_failed", gen.error
        try:
            llm_pairs(gen.text, self.cfg.llm_questions, "", "")
        except (ValueError, AttributeError) as exc:
            return "invalid_questions", str(exc)[:200]
        return None

    def evidence(self, clip: dict[str, Any]) -> str | None:
        """Why the boxes (or, for speech, the signals) rule this clip out of the branch (None:
        they do not, or there are none)."""
        if self.branch in self.signal_branches:
            cfg = self.cfg
            return why_not(clip, cfg.speech_min_lip_sync, cfg.speech_max_offset_s)
        sampled = clip.get("frames_sampled")
        rules = {"face": ("frames_with_face", self.cfg.face_min_share, "no_detected_face"),
                 "body": ("frames_with_person", self.cfg.body_min_share, "no_detected_person")}  # fmt: skip
        if self.branch not in rules or not sampled:
            return None
        column, share, reason = rules[self.branch]
        return reason if (clip.get(column) or 0) < share * sampled else None

    def chosen(self, clip: dict[str, Any]) -> bool:
        return eligible(self.branch, clip["fields"]) and self.evidence(clip) is None

    def prompt_for(self, clip: dict[str, Any], images: list[bytes]) -> Prompt:
        given = clip["fields"]
        if not self.chosen(clip) or not facts(self.branch, given):
            raise RuntimeError("no facts to ask about")  # no prompt: the LLM is not asked
        cfg = self.cfg
        text = cfg.prompt.format(n=cfg.llm_questions, about=ABOUT[self.branch],
                                 facts=facts(self.branch, given))  # fmt: skip
        schema = pairs_schema(cfg.llm_questions, cfg.max_field_chars)
        return Prompt(text, json_schema=schema, key=f"{clip['clip_id']}:{self.branch}")

    def calls(self) -> list[ModelCall]:
        if self.cfg.llm_questions == 0 or self.branch in self.signal_branches:
            return []
        return [ModelCall("questions", self.cfg.backend, self.prompt_for, self.verdict)]

    def preflight(self) -> None:
        super().preflight()
        if self.cfg.llm_questions and self.cfg.grounding > 0:
            check_model_available(resolve_model(self.cfg.embedder))

    @property
    def embedder(self) -> CaptionEmbedder | None:
        cfg = self.cfg
        if cfg.grounding <= 0 or not cfg.llm_questions:
            return None
        if self._embedder is None:
            device = self._worker.device(cfg.device, f"{self.name} embedder")
            self._embedder = CaptionEmbedder(cfg.embedder, device)
            self._embedder.load()
        return self._embedder

    def finish_devices(self) -> list[str | None]:
        return [self.cfg.device]

    def teardown(self) -> None:
        super().teardown()
        self._embedder = None

    def _llm(self, clip: dict[str, Any], answer: Outcome | None, counts: Counter) -> list:
        """The clip's grounded LLM pairs (none when it was not asked or the LLM failed)."""
        if answer is None or answer[1] == 0:  # no facts: nothing was asked
            return []
        gen = answer[0]
        if self.verdict(gen) is not None:
            counts["llm_failed_clips"] += 1
            return []
        found = llm_pairs(gen.text, self.cfg.llm_questions, self.cfg.backend.model, self.key)
        lines = [v for v in clip["fields"][self.branch].values() if v]
        kept = grounded(found, lines, self.embedder, self.cfg.grounding)
        counts["llm_ungrounded_pairs"] += len(found) - len(kept)
        return kept

    def finish(self, clips: list[dict[str, Any]], outcomes: list[list[Outcome]]) -> pa.Table:
        answers = (
            dict(zip((c["clip_id"] for c in clips), outcomes[0], strict=True)) if outcomes else {}
        )
        chosen = sorted((c for c in clips if self.chosen(c)), key=lambda c: c["clip_id"])
        start = stable(chosen[0]["clip_id"]) if chosen else 0
        counts: Counter[str] = Counter()
        for clip in clips:  # what the boxes rule removed (fields alone would have chosen it)
            reason = self.evidence(clip)
            if reason and eligible(self.branch, clip["fields"]):
                counts[f"removed_{reason}"] += 1
        kinds: Counter[str] = Counter()
        letters: Counter[str] = Counter()
        rows = []
        for position, clip in enumerate(chosen):
            cid = clip["clip_id"]
            track = largest_face_track(clip.get("boxes"))
            if self.branch in self.signal_branches:
                pairs = speech_pairs(clip)
            else:
                pairs = template_pairs(self.branch, cid, clip["fields"], clip.get("consensus"),
                                       start + position)  # fmt: skip
            pairs = unique(pairs + self._llm(clip, answers.get(cid), counts))
            for turn, pair in enumerate(pairs):
                kinds[pair.kind] += 1
                if pair.kind == "closed":
                    letters[pair.answer[1]] += 1
                rows.append({**pair.row(), "clip_id": cid, "source_id": clip.get("source_id"),
                             "branch": self.branch, "turn": turn,
                             "video": clip.get("clip_path"), "face_track": track,
                             "has_audio": bool(clip.get("has_audio"))})  # fmt: skip
        extra = {"eligible_clips": len(chosen), "kinds": dict(kinds),
                 "closed_answer_letters": dict(letters),
                 "llm_failed_clips": counts["llm_failed_clips"],
                 "llm_ungrounded_pairs": counts["llm_ungrounded_pairs"],
                 **{k: v for k, v in counts.items() if k.startswith("removed_")}}  # fmt: skip
        return with_extra(pa.Table.from_pylist(rows, schema=PAIRS), extra)
