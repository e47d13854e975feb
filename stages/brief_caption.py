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
from curation.backends import Backend, BackendConfig, Generation, Prompt, make_backend
from curation.backends.base import check_model_available, prompt_hash
from curation.media.frames import sample_frames
from stages.base import Stage, kept, rejected


@dataclass(kw_only=True)
class BriefCaptionStage(Stage):
    name: ClassVar[str] = "brief_caption"
    output_folder: ClassVar[str] = "captions"
    schema: ClassVar[pa.Schema] = schemas.CAPTIONS
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
    attempts: int = 3
    refusal_markers: list[str] = field(default_factory=list)
    batch_size: int = 8
    _backend: Backend | None = field(default=None, init=False, repr=False)

    @property
    def runs_in_ray_llm(self) -> bool:
        """vLLM runs as a Ray Data LLM processor, driven by the Ray runner (curation/runners/llm_stage.py)."""
        return self.backend.kind == "vllm"

    def preflight(self) -> None:
        if self.backend.kind == "transformers":
            check_model_available(self.backend.model)

    def setup(self) -> None:
        if self.runs_in_ray_llm:
            raise RuntimeError("backend kind 'vllm' runs on the Ray runner only (runner.kind: ray)")
        if self._backend is None:
            self._backend = make_backend(self.backend)
            self._backend.setup()

    def _frames(self, clip: dict[str, Any]) -> list:
        if clip.get("clip_path"):
            return sample_frames(
                clip["clip_path"], width=clip["display_width"], height=clip["display_height"],
                n=self.frames, max_side=self.max_side,
            )  # fmt: skip
        return sample_frames(
            clip["path"], width=clip["display_width"], height=clip["display_height"], n=self.frames,
            max_side=self.max_side, start_s=(clip["video_start_s"] or 0.0) + clip["start_s"],
            end_s=(clip["video_start_s"] or 0.0) + clip["end_s"],
        )  # fmt: skip

    def verdict(self, gen: Generation) -> tuple[str, str] | None:
        """(reason, detail) when the generation is not a usable caption."""
        if gen.error:
            return "caption_failed", gen.error
        text = gen.text.strip()
        if not text:
            return "empty_caption", "the model returned no text"
        lowered = text.lower()
        if any(lowered.startswith(m.lower()) for m in self.refusal_markers):
            return "refused", text[:200]
        return None

    def prompt_for(self, clip: dict[str, Any]) -> Prompt:
        """The prompt for one clip; raises RuntimeError when no frame can be sampled."""
        return Prompt(self.prompt, self._frames(clip), self.system, key=clip["clip_id"])

    def process(self, batch: pa.Table) -> pa.Table:
        self.setup()
        assert self._backend is not None
        clips = batch.to_pylist()
        prompts: dict[int, Prompt] = {}
        outcome: dict[int, tuple[Generation, int]] = {}
        for i, clip in enumerate(clips):
            try:
                prompts[i] = self.prompt_for(clip)
            except RuntimeError as exc:  # nothing to show the model
                outcome[i] = (Generation(error=f"frame sampling: {exc}"), 0)
        pending = list(prompts)
        for attempt in range(1, self.attempts + 1):
            if not pending:
                break
            answers = self._backend.generate([prompts[i] for i in pending])
            for i, gen in zip(pending, answers, strict=True):
                outcome[i] = (gen, attempt)
            pending = [i for i in pending if self.verdict(outcome[i][0]) is not None]
        return self.finish(clips, [outcome[i] for i in range(len(clips))])

    def finish(
        self, clips: list[dict[str, Any]], outcome: list[tuple[Generation, int]]
    ) -> pa.Table:
        """Output rows from each clip's last generation and the number of attempts it took."""
        key = prompt_hash(self.system or "", self.prompt, str(self.frames), str(self.max_side))
        rows = []
        for clip, (gen, attempts) in zip(clips, outcome, strict=True):
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
