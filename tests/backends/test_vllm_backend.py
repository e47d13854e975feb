"""The vLLM backend: engine and sampling arguments from the configs, and the engine held by a
stage's worker for the whole stage. vLLM needs a GPU and cannot be installed here, so the
engine is a test double with vLLM's documented interface (`LLM.chat`, `SamplingParams`,
`StructuredOutputsParams`); the code under test is what maps our prompts onto it and back."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import numpy as np
import pytest

from curation.backends import BackendConfig, Prompt, backend_class, make_backend
from curation.backends.vllm_backend import engine_kwargs, sampling_kwargs
from curation.core.worker import GpuNeed
from curation.engine.config import load_config
from curation.media.frames import encode_jpeg


def test_72b_settings_map_onto_the_engine_arguments():
    cluster = load_config("configs/curate/cluster.yaml").brief_caption
    assert cluster.backend.kind == "vllm"
    kwargs = engine_kwargs(cluster.backend, cluster.frames)
    assert kwargs["model"] == "Qwen/Qwen2-VL-72B-Instruct"
    assert kwargs["tensor_parallel_size"] == 8 and kwargs["distributed_executor_backend"] == "mp"
    assert kwargs["limit_mm_per_prompt"] == {"image": cluster.frames}
    assert kwargs["max_model_len"] == 32768 and kwargs["dtype"] == "bfloat16"
    # One engine of 8 GPUs per worker; never on a CPU.
    assert backend_class("vllm").gpu_need(cluster.backend) == GpuNeed(8.0, required=True)


def test_extra_engine_kwargs_and_text_only_models():
    cfg = BackendConfig(kind="vllm", model="m", engine_kwargs={"enforce_eager": True})
    kwargs = engine_kwargs(cfg, 0)
    assert kwargs["enforce_eager"] is True and "dtype" not in kwargs
    assert "limit_mm_per_prompt" not in kwargs  # a text-only prompt: no image limit
    assert "distributed_executor_backend" not in kwargs  # one GPU: no tensor parallelism


def test_sampling_follows_the_prompt_and_a_retry_samples_anew():
    cfg = BackendConfig(kind="vllm", model="m", max_tokens=33, temperature=0.0, seed=7)
    first = sampling_kwargs(cfg, Prompt("d", json_schema={"type": "object"}))
    assert first == {"max_tokens": 33, "temperature": 0.0, "seed": 7,
                     "structured_outputs": {"json": {"type": "object"}}}  # fmt: skip
    retry = sampling_kwargs(cfg, Prompt("d", attempt=1))
    assert retry["temperature"] >= 0.7 and retry["seed"] != 7  # greedy would repeat itself


@dataclass
class FakeOutput:  # vllm.CompletionOutput
    text: str
    token_ids: list[int]


@dataclass
class FakeRequest:  # vllm.RequestOutput
    prompt_token_ids: list[int]
    outputs: list[FakeOutput]


@dataclass
class FakeLLM:
    """vllm.LLM's chat(): answers with what it was given, fails on a prompt saying 'boom'."""

    kwargs: dict
    calls: list = field(default_factory=list)

    def chat(self, messages, sampling_params, use_tqdm=True):
        self.calls.append(len(messages))
        out = []
        for conversation, params in zip(messages, sampling_params, strict=True):
            parts = conversation[-1]["content"]
            text = parts[-1]["text"]
            if "boom" in text:
                raise ValueError("prompt too long")
            images = sum(p["type"] == "image_url" for p in parts)
            out.append(
                FakeRequest(
                    [0] * (10 + images),
                    [FakeOutput(f"{images}:{text}:{params.kw.get('seed')}", [1, 2])],
                )
            )
        return out


@pytest.fixture
def fake_vllm(monkeypatch):
    engines: list[FakeLLM] = []

    class Params:
        def __init__(self, **kw):
            self.kw = kw

    module = types.ModuleType("vllm")
    module.LLM = lambda **kw: engines.append(FakeLLM(kw)) or engines[-1]
    module.SamplingParams = Params
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.StructuredOutputsParams = lambda **kw: ("structured", kw)
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling)
    return engines


def test_the_engine_is_made_once_and_answers_every_prompt(fake_vllm):
    backend = make_backend(BackendConfig(kind="vllm", model="m", seed=3), images=2)
    with pytest.raises(RuntimeError, match="needs GPUs"):
        backend.setup("cpu")
    backend.setup("cuda")
    jpeg = encode_jpeg(np.zeros((16, 16, 3), np.uint8))
    first = backend.generate([Prompt("a", [jpeg, jpeg]), Prompt("b", [jpeg])])
    again = backend.generate([Prompt("c", attempt=1)])
    assert len(fake_vllm) == 1 and fake_vllm[0].kwargs["limit_mm_per_prompt"] == {"image": 2}
    assert fake_vllm[0].calls == [2, 1]  # one chat() per batch of prompts
    assert [g.text for g in first] == ["2:a:3", "1:b:3"] and first[0].prompt_tokens == 12
    assert again[0].text.startswith("0:c:") and again[0].completion_tokens == 2


def test_one_bad_prompt_fails_only_itself(fake_vllm):
    backend = make_backend(BackendConfig(kind="vllm", model="m"))
    backend.setup("cuda")
    ok, bad, ok2 = backend.generate([Prompt("x"), Prompt("boom"), Prompt("y")])
    assert ok.text and ok2.text and bad.error and "prompt too long" in bad.error
    backend.close()
    assert backend._llm is None
