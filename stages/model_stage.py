"""What the stages that ask models share: their calls, retries and the answer checks.

A model stage declares its *calls*: one per configured model (brief caption: one VLM;
detailed caption: several VLMs; consensus: one LLM). Every clip gets one prompt per call; an
answer that is an error, empty or a refusal is retried, up to `attempts` tries, and the stage
turns each clip's last answers into its output row in `finish()`. In-process (`process()`)
the backends run here; when the calls' backends are vLLM, the Ray runner runs the same calls
through Ray Data's LLM processor instead (curation/runners/llm_stage.py) and calls `finish()`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from curation.backends import Backend, BackendConfig, Generation, Prompt, make_backend
from curation.backends.base import check_model_available
from stages.base import Stage

Outcome = tuple[Generation, int]  # the last answer and the number of tries it took


@dataclass
class ModelCall:
    name: str  # what the output calls this model
    backend: BackendConfig
    frames: int  # images per prompt (0: text only)
    prompt_for: Callable[[dict[str, Any]], Prompt]  # raises RuntimeError: nothing to ask
    verdict: Callable[[Generation], tuple[str, str] | None]  # (reason, detail) if unusable


def answer_problem(gen: Generation, refusal_markers: list[str], failed: str, empty: str):
    """(reason, detail) when a generation is not a usable text answer, else None."""
    if gen.error:
        return failed, gen.error
    text = gen.text.strip()
    if not text:
        return empty, "the model returned no text"
    lowered = text.lower()
    if any(lowered.startswith(m.lower()) for m in refusal_markers):
        return "refused", text[:200]
    return None


# Loaded models and caches: never shipped to Ray workers with the stage (they rebuild them).
TRANSIENT = ("_backends", "_frames", "_scorer", "_embedder")


@dataclass(kw_only=True)
class ModelStage(Stage):
    attempts: int = 3
    _backends: dict[str, Backend] = field(default_factory=dict, init=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in TRANSIENT}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for f in dataclasses.fields(self):
            if f.name in TRANSIENT and f.name not in state:
                fresh = (
                    f.default_factory() if f.default_factory is not dataclasses.MISSING else None
                )
                setattr(self, f.name, fresh)

    def release(self) -> None:
        """Drop per-batch caches (frames); called after each batch of clips."""

    def calls(self) -> list[ModelCall]:
        raise NotImplementedError

    def finish(self, clips: list[dict[str, Any]], outcomes: list[list[Outcome]]) -> pa.Table:
        """Output rows from `outcomes[c][i]`: call c's last answer for clip i."""
        raise NotImplementedError

    @property
    def runs_in_ray_llm(self) -> bool:
        """True when a call's backend is vLLM: the Ray runner then runs the whole stage (its
        other calls, e.g. an OpenAI-compatible server, from the driver)."""
        return any(c.backend.kind == "vllm" for c in self.calls())

    def preflight(self) -> None:
        for call in self.calls():
            if call.backend.kind == "transformers":
                check_model_available(call.backend.model)

    def setup(self) -> None:
        if self.runs_in_ray_llm:
            raise RuntimeError("backend kind 'vllm' runs on the Ray runner only (runner.kind: ray)")
        for call in self.calls():
            self.backend_for(call)

    def backend_for(self, call: ModelCall) -> Backend:
        if call.name not in self._backends:
            backend = make_backend(call.backend)
            backend.setup()
            self._backends[call.name] = backend
        return self._backends[call.name]

    def ask(self, call: ModelCall, clips: list[dict[str, Any]]) -> list[Outcome]:
        """One call for every clip, retrying unusable answers (a retry samples anew: see
        Prompt.attempt)."""
        prompts: dict[int, Prompt] = {}
        outcome: dict[int, Outcome] = {}
        for i, clip in enumerate(clips):
            try:
                prompts[i] = call.prompt_for(clip)
            except RuntimeError as exc:  # nothing to show the model
                outcome[i] = (Generation(error=str(exc)), 0)
        pending = list(prompts)
        for attempt in range(1, self.attempts + 1):
            if not pending:
                break
            for i in pending:
                prompts[i].attempt = attempt - 1
            answers = self.backend_for(call).generate([prompts[i] for i in pending])
            for i, gen in zip(pending, answers, strict=True):
                outcome[i] = (gen, attempt)
            pending = [i for i in pending if call.verdict(outcome[i][0]) is not None]
        return [outcome[i] for i in range(len(clips))]

    def process(self, batch: pa.Table) -> pa.Table:
        self.setup()
        clips = batch.to_pylist()
        return self.finish(clips, [self.ask(call, clips) for call in self.calls()])
