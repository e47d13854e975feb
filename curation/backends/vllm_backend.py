"""vLLM in the stage's own workers: the production path for models on the cluster's GPUs.

Each worker of a model stage that uses this backend holds one vLLM engine (`vllm.LLM`) for
the whole stage: the Ray runner reserves `tensor_parallel_size` GPUs for it (one node; the
engine's tensor-parallel workers are its own processes on those GPUs) and runs
`resources.concurrency` such workers, the replicas. A shard's prompts go to the engine in one
`LLM.chat` call, so vLLM batches them continuously; prompts are made (frames sampled and
JPEG-encoded) by the stage's CPU workers beforehand, so the GPUs never wait on decoding.
Answers that are unusable are asked again by the stage in the same engine: nothing restarts.

Needs `pip install '.[gpu]'` (vLLM 0.12 or newer: structured outputs as
`StructuredOutputsParams`) and GPUs. For Qwen2-VL-72B-Instruct / Qwen2.5-VL-72B-Instruct on
8-GPU nodes with 80 GB cards, see configs/curate/cluster.yaml: tensor_parallel_size 8 (one
replica per node), max_model_len 32768, 8 frames per clip at max_side 448 (about 2.5k visual
tokens). A model vLLM cannot run here can be served elsewhere behind the `openai` backend.
"""

from __future__ import annotations

import logging
from typing import Any

from curation.backends.base import (
    BackendConfig,
    Generation,
    Prompt,
    check_model_available,
    sampling_for,
)
from curation.backends.openai_backend import chat_messages
from curation.core import faults
from curation.core.worker import GpuNeed, release_torch_memory

log = logging.getLogger(__name__)


def engine_kwargs(config: BackendConfig, images_per_prompt: int) -> dict[str, Any]:
    """Arguments of `vllm.LLM` for this backend config."""
    kwargs: dict[str, Any] = {
        "model": config.model,
        "tensor_parallel_size": config.tensor_parallel_size,
        "gpu_memory_utilization": config.gpu_memory_utilization,
        "enable_prefix_caching": True,  # every clip shares the prompt
        "seed": config.seed,
    }
    if config.tensor_parallel_size > 1:
        # The worker holds all of the engine's GPUs on one node: vLLM's own processes use them.
        kwargs["distributed_executor_backend"] = "mp"
    if images_per_prompt > 0:  # text-only models (the consensus LLM) take no image limit
        kwargs["limit_mm_per_prompt"] = {"image": images_per_prompt}
    if config.max_model_len:
        kwargs["max_model_len"] = config.max_model_len
    if config.dtype != "auto":
        kwargs["dtype"] = config.dtype
    return {**kwargs, **config.engine_kwargs}


def sampling_kwargs(config: BackendConfig, prompt: Prompt) -> dict[str, Any]:
    """Arguments of `vllm.SamplingParams` for one try of one prompt (structured outputs
    given as the `json` schema of `StructuredOutputsParams`)."""
    temperature, seed = sampling_for(config, prompt)
    kwargs: dict[str, Any] = {
        "max_tokens": config.max_tokens,
        "temperature": temperature,
        "seed": seed,
    }
    if prompt.json_schema is not None:
        kwargs["structured_outputs"] = {"json": prompt.json_schema}
    return kwargs


def generation_of(output: Any) -> Generation:
    """Our Generation from one vLLM `RequestOutput`."""
    if not output.outputs:
        return Generation(error="vllm: no output")
    first = output.outputs[0]
    return Generation(
        text=first.text or "",
        prompt_tokens=len(output.prompt_token_ids or []),
        completion_tokens=len(first.token_ids or []),
    )


class VLLMBackend:
    def __init__(self, config: BackendConfig, images: int = 0):
        self.config = config
        self.images = images
        self._llm: Any = None

    @staticmethod
    def gpu_need(config: BackendConfig) -> GpuNeed:
        return GpuNeed(float(config.tensor_parallel_size), required=True)

    @staticmethod
    def preflight(config: BackendConfig) -> None:
        check_model_available(config.model)

    def setup(self, device: str = "cuda") -> None:
        if self._llm is not None:
            return
        try:
            from vllm import LLM
        except ImportError as exc:
            raise RuntimeError(
                "backend kind 'vllm' needs vLLM on the GPU nodes (pip install '.[gpu]')"
            ) from exc
        if not device.startswith("cuda"):
            raise RuntimeError(
                f"vllm: {self.config.model} needs GPUs, but this worker was given {device!r}"
            )
        self._llm = LLM(**engine_kwargs(self.config, self.images))

    def _params(self, prompt: Prompt) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        kwargs = sampling_kwargs(self.config, prompt)
        if "structured_outputs" in kwargs:
            kwargs["structured_outputs"] = StructuredOutputsParams(**kwargs["structured_outputs"])
        return SamplingParams(**kwargs)

    def _chat(self, prompts: list[Prompt]) -> list[Generation]:
        outputs = self._llm.chat(
            [chat_messages(p) for p in prompts],
            sampling_params=[self._params(p) for p in prompts],
            use_tqdm=False,
        )
        return [generation_of(o) for o in outputs]

    def generate(self, prompts: list[Prompt]) -> list[Generation]:
        if self._llm is None:
            raise RuntimeError("VLLMBackend.generate before setup()")
        if not prompts:
            return []
        try:
            return self._chat(prompts)
        except Exception as exc:  # one bad prompt (too long, bad image) fails the whole call
            faults.check(exc)  # unless the machine failed (out of memory, a lost disk)
            log.warning("vllm: a batch of %d failed (%s); asking one at a time", len(prompts), exc)
        answers = []
        for prompt in prompts:
            try:
                answers += self._chat([prompt])
            except Exception as exc:  # recorded as this prompt's failure
                faults.check(exc)
                answers.append(Generation(error=f"vllm: {type(exc).__name__}: {exc}"[:300]))
        return answers

    def close(self) -> None:
        if self._llm is not None:
            self._llm = None
            release_torch_memory()
