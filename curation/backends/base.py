"""The backend interface shared by every model backend."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from curation.core.worker import GpuNeed


class BackendConfig(BaseModel):
    """Which model answers, and how. One section of a model stage's config."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    kind: Literal["transformers", "openai", "vllm"] = "transformers"
    model: str = Field(
        ..., description="hub id or local folder (transformers), served name (openai)"
    )
    max_tokens: int = Field(128, ge=1)
    temperature: float = Field(0.0, ge=0, description="0: greedy")
    seed: int = 0
    # transformers
    device: str | None = Field(None, description="None: the GPU the worker was given, else CPU")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # openai-compatible HTTP
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the key")
    concurrency: int = Field(8, ge=1, description="requests in flight")
    timeout_s: float = Field(120.0, gt=0)
    retries: int = Field(3, ge=0, description="HTTP retries, with exponential backoff")
    backoff_s: float = Field(1.0, ge=0)
    # vllm: one engine per worker of the stage (its resources.concurrency is the replicas)
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per engine (one node)")
    max_model_len: int | None = Field(None, ge=256)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="more vLLM engine arguments"
    )


class ModelUnavailable(RuntimeError):
    """A configured model cannot be loaded (not a local folder and not downloadable)."""


def check_model_available(name: str) -> None:
    """Fetch only the model's config (a few KB): fails fast, before any work, when offline."""
    from pathlib import Path

    if Path(name).is_dir():
        return
    from huggingface_hub import hf_hub_download

    try:
        hf_hub_download(name, "config.json", etag_timeout=5)
    except (
        Exception
    ) as exc:  # offline, unknown repo, gated, no connection: all say "cannot have it"
        raise ModelUnavailable(
            f"model {name!r} is not a local folder and cannot be downloaded ({str(exc).splitlines()[0]}). "
            "On a machine without network use CONFIG=configs/curate/offline.yaml, or point the "
            "model setting at a local folder."
        ) from None


@dataclass
class Prompt:
    text: str
    # JPEG-encoded frames in time order: made once by the stage's CPU workers, small enough
    # to travel to the model's workers, and what HTTP and vLLM backends send as they are.
    images: list[bytes] = field(default_factory=list)
    system: str | None = None
    json_schema: dict[str, Any] | None = None  # constrained output, for later stages
    key: str = ""  # e.g. the clip id: seeds sampling, so a re-run gives the same text
    # 0 on the first try. A retry changes the seed and samples at RETRY_TEMPERATURE at least,
    # so that a refusal or an unparsable answer is not simply repeated (greedy would be).
    attempt: int = 0


RETRY_TEMPERATURE = 0.7


def sampling_for(config: BackendConfig, prompt: Prompt) -> tuple[float, int]:
    """(temperature, seed) for this try of this prompt."""
    if prompt.attempt == 0:
        return config.temperature, config.seed
    return max(config.temperature, RETRY_TEMPERATURE), config.seed + 7919 * prompt.attempt


@dataclass
class Generation:
    text: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None  # set when no text could be produced


def prompt_hash(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode(), usedforsecurity=False).hexdigest()[:12]


class Backend(Protocol):
    config: BackendConfig

    def __init__(self, config: BackendConfig, images: int = 0):
        """`images`: the most frames one prompt carries (engines size their inputs by it)."""

    @staticmethod
    def gpu_need(config: BackendConfig) -> GpuNeed:
        """What one worker running this backend reserves with `resources.gpus: auto`."""
        ...

    @staticmethod
    def preflight(config: BackendConfig) -> None:
        """Cheap checks in the driver before any work (e.g. that the weights can be had)."""
        ...

    def setup(self, device: str) -> None:
        """Load the model (or open the client) on the device the worker was given."""
        ...

    def generate(self, prompts: list[Prompt]) -> list[Generation]:
        """One Generation per prompt, same order; failures carry `error`, never raise."""
        ...

    def close(self) -> None:
        """Let the model go (free its memory); setup() may be called again afterwards."""
        ...
