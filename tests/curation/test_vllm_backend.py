"""The vLLM backend's config mapping and request building, against Ray's real
`ray.data.llm` config classes (vLLM itself needs a GPU, so no engine runs here)."""

import numpy as np
import pytest

from curation.backends import BackendConfig, Generation, Prompt
from curation.backends.vllm_backend import (
    engine_kwargs,
    generation_from_row,
    processor_config,
    request_row,
)
from curation.config import load_config

pytest.importorskip("ray.data.llm")


def test_72b_settings_map_onto_the_ray_processor_config():
    cluster = load_config("configs/curate/cluster.yaml").brief_caption
    assert cluster.backend.kind == "vllm"
    cfg = processor_config(cluster.backend, cluster.frames)
    assert cfg.model_source == "Qwen/Qwen2-VL-72B-Instruct"
    assert cfg.engine_kwargs["tensor_parallel_size"] == 8
    assert cfg.engine_kwargs["limit_mm_per_prompt"] == {"image": cluster.frames}
    assert cfg.engine_kwargs["max_model_len"] == 32768
    assert (
        cfg.concurrency == cluster.backend.replicas
        and cfg.batch_size == cluster.backend.engine_batch_size
    )
    assert cfg.should_continue_on_error


def test_extra_engine_kwargs_and_dtype_pass_through():
    cfg = BackendConfig(
        kind="vllm", model="m", dtype="bfloat16", engine_kwargs={"enforce_eager": True}
    )
    kwargs = engine_kwargs(cfg, 0)
    assert kwargs["dtype"] == "bfloat16" and kwargs["enforce_eager"] is True
    assert "limit_mm_per_prompt" not in kwargs  # a text-only prompt: no image limit
    assert engine_kwargs(cfg, 3)["limit_mm_per_prompt"] == {"image": 3}


def test_request_rows_carry_frames_messages_and_sampling():
    cfg = BackendConfig(kind="vllm", model="m", max_tokens=33, temperature=0.2, seed=7)
    frames = [np.full((32, 48, 3), v, np.uint8) for v in (0, 128)]
    row = request_row(
        cfg, Prompt("Describe.", frames, system="Be brief.", json_schema={"type": "object"})
    )
    assert row["messages"][0] == {"role": "system", "content": "Be brief."}
    parts = row["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    assert row["sampling_params"] == {
        "max_tokens": 33, "temperature": 0.2, "seed": 7, "structured_outputs": {"json": {"type": "object"}},
    }  # fmt: skip


def test_engine_rows_become_generations():
    ok = generation_from_row(
        {"generated_text": "A man.", "num_input_tokens": 900, "num_generated_tokens": 3}
    )
    assert ok == Generation(text="A man.", prompt_tokens=900, completion_tokens=3)
    failed = generation_from_row(
        {"__inference_error__": "CUDA out of memory", "generated_text": ""}
    )
    assert failed.error == "vllm: CUDA out of memory"


def test_a_retry_samples_anew():
    cfg = BackendConfig(kind="vllm", model="m", temperature=0.0, seed=7)
    first = request_row(cfg, Prompt("describe", key="c"))["sampling_params"]
    retry = request_row(cfg, Prompt("describe", key="c", attempt=1))["sampling_params"]
    assert (first["temperature"], first["seed"]) == (0.0, 7)
    assert retry["temperature"] >= 0.7 and retry["seed"] != 7  # greedy would repeat itself
