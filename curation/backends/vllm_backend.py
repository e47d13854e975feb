"""vLLM inside Ray Data, through Ray's LLM integration (`ray.data.llm`): the production path.

A model stage whose backend is `vllm` is not run row batch by row batch in a worker: the Ray
runner hands its rows to a `ray.data.llm` processor, which runs `replicas` vLLM engines of
`tensor_parallel_size` GPUs each (placement groups, continuous batching) and streams rows
through them. This module maps our BackendConfig onto that processor and our Prompt onto its
rows (OpenAI-style messages, frames as base64 JPEG `image_url` parts, per-row sampling
parameters), and reads the answers back. Needs `pip install '.[gpu]'` and GPUs.

For Qwen2-VL-72B-Instruct / Qwen2.5-VL-72B-Instruct on 8-GPU nodes (80 GB cards), see
configs/curate/cluster.yaml: tensor_parallel_size 8 (one replica per node), max_model_len
32768, 8 frames per clip at max_side 448 (about 2.5k visual tokens), engine_batch_size 32.
"""

from __future__ import annotations

from typing import Any

from curation.backends.base import BackendConfig, Generation, Prompt, sampling_for
from curation.backends.openai_backend import request_body


def engine_kwargs(config: BackendConfig, images_per_prompt: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "tensor_parallel_size": config.tensor_parallel_size,
        "gpu_memory_utilization": config.gpu_memory_utilization,
        "enable_prefix_caching": True,  # every clip shares the prompt
    }
    if images_per_prompt > 0:  # text-only models (the consensus LLM) take no image limit
        kwargs["limit_mm_per_prompt"] = {"image": images_per_prompt}
    if config.max_model_len:
        kwargs["max_model_len"] = config.max_model_len
    if config.dtype != "auto":
        kwargs["dtype"] = config.dtype
    return {**kwargs, **config.engine_kwargs}


def processor_config(config: BackendConfig, images_per_prompt: int):
    """The `ray.data.llm.vLLMEngineProcessorConfig` for this backend config."""
    from ray.data.llm import vLLMEngineProcessorConfig

    return vLLMEngineProcessorConfig(
        model_source=config.model,
        engine_kwargs=engine_kwargs(config, images_per_prompt),
        concurrency=config.replicas,
        batch_size=config.engine_batch_size,
        # A failed row comes back with __inference_error__ instead of failing the dataset:
        # the stage records it, like any other backend's failure.
        should_continue_on_error=True,
        prepare_multimodal_stage={"enabled": images_per_prompt > 0},
    )


def request_row(config: BackendConfig, prompt: Prompt) -> dict[str, Any]:
    """One processor input row: chat messages and this row's sampling parameters."""
    body = request_body(config, prompt)
    temperature, seed = sampling_for(config, prompt)
    sampling: dict[str, Any] = {
        "max_tokens": config.max_tokens,
        "temperature": temperature,
        "seed": seed,
    }
    if prompt.json_schema is not None:
        sampling["structured_outputs"] = {"json": prompt.json_schema}
    return {"messages": body["messages"], "sampling_params": sampling}


def generation_from_row(row: dict[str, Any]) -> Generation:
    error = row.get("__inference_error__")
    if error:
        return Generation(error=f"vllm: {str(error)[:300]}")
    return Generation(
        text=row.get("generated_text") or "",
        prompt_tokens=row.get("num_input_tokens"),
        completion_tokens=row.get("num_generated_tokens"),
    )


def build_processor(config: BackendConfig, images_per_prompt: int):
    """A Ray Data processor: rows with `messages`/`sampling_params` in, generations out."""
    from ray.data.llm import build_processor as build

    return build(processor_config(config, images_per_prompt))
