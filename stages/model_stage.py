"""What the stages that ask models share: their calls, the one retry loop, the answer checks.

A model stage declares its *calls*: one per configured model (brief caption: one VLM;
detailed caption: several VLMs; consensus: one LLM). Its work on a shard has three parts:

1. `prepare(clips)`: every clip's prompt for every call (frames sampled and JPEG-encoded).
   No model is needed, so the Ray runner runs this in CPU tasks, apart from the GPUs.
2. `answer(i, prompts)`: call i's model answers every prompt; an answer that is an error,
   empty or a refusal is asked again (`ask_until_usable`, the only retry loop of the
   pipeline), up to `attempts` tries, in the same loaded model. The Ray runner gives each
   call its own pool of workers that hold that model, so two large VLMs never have to share
   a worker's GPUs.
3. `finish(clips, outcomes)`: each clip's output row from its last answers.

The local runner runs the three in turn in one process (`process()`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from curation.backends import (
    Backend,
    BackendConfig,
    Generation,
    Prompt,
    backend_class,
    make_backend,
)
from curation.core.config import Resources
from curation.core.worker import GpuNeed, Worker
from curation.media.frames import clip_jpegs
from stages.base import ModelGroup, Stage

# Model stages: prompts (frames sampled, JPEG-encoded) are made by CPU tasks (`prepare`), and
# each model runs in its own pool of workers that hold it loaded (`resources`).
PREPARE = Resources(cpus=1, concurrency=4)
MODEL = Resources(cpus=1, gpus="auto", concurrency=1)


def check_template(prompt: str, **placeholders: str) -> None:
    """The prompt must use every placeholder and no other `{...}` (write `{{` for a brace)."""
    missing = [f"{{{k}}}" for k in placeholders if f"{{{k}}}" not in prompt]
    if missing:
        raise ValueError(f"prompt must contain {missing}")
    try:
        prompt.format(**placeholders)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"prompt has a placeholder other than {list(placeholders)} or a lone brace ({exc}); "
            "write {{ and }} for literal braces"
        ) from None


Outcome = tuple[Generation, int]  # the last answer and the number of tries it took
# A prompt, or why the clip has none (e.g. no frame could be decoded).
Prepared = Prompt | str


@dataclass
class ModelCall:
    name: str  # what the output calls this model
    backend: BackendConfig
    # The prompt for a clip, given its frames (JPEG, `frames` of them at `max_side`); raises
    # RuntimeError when there is nothing to ask (the clip then gets that as its error).
    prompt_for: Callable[[dict[str, Any], list[bytes]], Prompt]
    verdict: Callable[[Generation], tuple[str, str] | None]  # (reason, detail) if unusable
    frames: int = 0  # images per prompt (0: text only)
    max_side: int = 448


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


NOT_ASKED = "decode_failed"  # a clip with nothing to show the model: asking again cannot help


def outcome_problem(outcome: Outcome, verdict: Callable[[Generation], Any]):
    """(reason, detail) when an outcome is unusable: `decode_failed` (not retryable) when no
    prompt could be made for the clip (0 tries), else the call's own verdict."""
    gen, attempts = outcome
    if attempts == 0 and gen.error:
        return NOT_ASKED, gen.error
    return verdict(gen)


def ask_until_usable(
    backend: Backend,
    prepared: list[Prepared],
    verdict: Callable[[Generation], Any],
    attempts: int,
) -> list[Outcome]:
    """Every prompt answered; unusable answers asked again, up to `attempts` tries in all.

    A retry samples anew (Prompt.attempt changes the seed and temperature), so a refusal or
    an unparsable answer is not simply repeated. A clip without a prompt gets its reason as
    an error after 0 tries.
    """
    outcome: dict[int, Outcome] = {
        i: (Generation(error=p), 0) for i, p in enumerate(prepared) if isinstance(p, str)
    }
    prompts = {i: p for i, p in enumerate(prepared) if isinstance(p, Prompt)}
    pending = list(prompts)
    for attempt in range(1, attempts + 1):
        if not pending:
            break
        for i in pending:
            prompts[i].attempt = attempt - 1
        answers = backend.generate([prompts[i] for i in pending])
        for i, gen in zip(pending, answers, strict=True):
            outcome[i] = (gen, attempt)
        pending = [i for i in pending if verdict(outcome[i][0]) is not None]
    return [outcome[i] for i in range(len(prepared))]


def _images_or_reason(clip: dict[str, Any], frames: int, max_side: int) -> list[bytes] | str:
    try:
        return clip_jpegs(clip, frames, max_side)
    except RuntimeError as exc:  # nothing to show the model
        return str(exc)


def _prompt_or_reason(call: ModelCall, clip: dict[str, Any], images: list[bytes] | str) -> Prepared:
    if isinstance(images, str):
        return images
    try:
        return call.prompt_for(clip, images)
    except RuntimeError as exc:  # nothing to ask about this clip
        return str(exc)


@dataclass(kw_only=True)
class ModelStage(Stage):
    uses_actor: ClassVar[bool] = True
    batch_rows: ClassVar[int] = 1 << 30  # a shard's clips are one batch: engines batch them
    _backends: dict[int, Backend] = field(default_factory=dict, init=False, repr=False)
    _worker: Worker = field(default_factory=Worker.local, init=False, repr=False)

    def calls(self) -> list[ModelCall]:
        raise NotImplementedError

    def finish(self, clips: list[dict[str, Any]], outcomes: list[list[Outcome]]) -> pa.Table:
        """Output rows from `outcomes[c][i]`: call c's last answer for clip i."""
        raise NotImplementedError

    # --- resources ----------------------------------------------------------------------------
    @property
    def prepare_resources(self) -> Resources:
        return self.cfg.prepare  # type: ignore[attr-defined]

    def call_gpu_need(self, index: int) -> GpuNeed:
        call = self.calls()[index]
        return backend_class(call.backend.kind).gpu_need(call.backend)

    def finish_devices(self) -> list[str | None]:
        """Devices of the models finish() loads itself (embedders), as configured."""
        return []

    def finish_gpu_need(self) -> GpuNeed:
        """What the worker that finishes a shard needs beyond its calls: a GPU when an
        embedder's device is set to CUDA (left unset, it runs on what the worker has)."""
        return GpuNeed.most([GpuNeed.for_device(d) for d in self.finish_devices() if d])

    def gpu_need(self) -> GpuNeed:
        calls = [self.call_gpu_need(i) for i in range(len(self.calls()))]
        return GpuNeed.most([*calls, self.finish_gpu_need()])

    def model_groups(self) -> list[ModelGroup]:
        """Which calls share a worker under Ray: a model that holds GPUs of its own (a vLLM
        engine) gets its own pool of workers; the stage's other models share one worker and
        its device. A stage without calls still has one group: the worker that finishes. The
        last group's workers also finish the shard, so they also need what finish() loads."""
        calls = self.calls()
        own = [[i] for i in range(len(calls)) if self.call_gpu_need(i).required]
        shared = [i for i in range(len(calls)) if not self.call_gpu_need(i).required]
        groups = ([shared] if shared else []) + own or [[]]
        out = []
        for k, group in enumerate(groups):
            needs = [self.call_gpu_need(i) for i in group]
            if k == len(groups) - 1:
                needs.append(self.finish_gpu_need())
            label = "" if len(groups) == 1 else "+".join(calls[i].name for i in group)
            out.append(ModelGroup(label, tuple(group), GpuNeed.most(needs)))
        return out

    def preflight(self) -> None:
        for call in self.calls():
            backend_class(call.backend.kind).preflight(call.backend)

    # --- the three parts ----------------------------------------------------------------------
    def prepare(self, clips: list[dict[str, Any]]) -> list[list[Prepared]]:
        """Every call's prompt for every clip: `out[c][i]`. A clip is decoded once for all the
        calls that want the same frames (same count and size)."""
        images: dict[tuple[int, int], list[list[bytes] | str]] = {}
        out: list[list[Prepared]] = []
        for call in self.calls():
            key = (call.frames, call.max_side)
            if call.frames and key not in images:
                images[key] = [_images_or_reason(c, *key) for c in clips]
            got = images[key] if call.frames else [[] for _ in clips]
            out.append(
                [_prompt_or_reason(call, clip, i) for clip, i in zip(clips, got, strict=True)]
            )
        return out

    def setup(self, worker: Worker) -> None:
        """Remember the worker's devices: a model loads there when first asked (`answer`), so
        a worker that holds one group of models never loads the others."""
        self._worker = worker

    def backend_for(self, index: int) -> Backend:
        if index not in self._backends:
            call = self.calls()[index]
            backend = make_backend(call.backend, call.frames)
            backend.setup(self._worker.device(call.backend.device, f"{self.name} {call.name}"))
            self._backends[index] = backend
        return self._backends[index]

    def answer(self, index: int, prepared: list[Prepared]) -> list[Outcome]:
        call = self.calls()[index]
        return ask_until_usable(
            self.backend_for(index),
            prepared,
            call.verdict,
            self.cfg.attempts,  # type: ignore[attr-defined]
        )

    def process(self, batch: pa.Table) -> pa.Table:
        clips = batch.to_pylist()
        prepared = self.prepare(clips)
        return self.finish(clips, [self.answer(i, p) for i, p in enumerate(prepared)])

    def teardown(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
