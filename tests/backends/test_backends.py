"""Generation backends with real models and a real HTTP server: the tiny random-weight Qwen2-VL
through transformers, and through the OpenAI-compatible protocol (ok, errors, hanging)."""

import time

import numpy as np
import pytest
from chat_server import ChatServer

from curation.backends import BackendConfig, Prompt, make_backend
from curation.backends.base import ModelUnavailable
from curation.backends.openai_backend import request_body
from curation.media.frames import encode_jpeg


def frames(n=4, seed=0) -> list[bytes]:
    """Random frames, JPEG-encoded as the stages' CPU workers send them."""
    rng = np.random.default_rng(seed)
    return [encode_jpeg(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)) for _ in range(n)]


def ready(config: BackendConfig):
    backend = make_backend(config)
    backend.setup("cpu")
    return backend


@pytest.fixture(scope="module")
def server(tiny_models):
    with ChatServer(tiny_models["qwen2-vl"]) as s:
        yield s


def test_transformers_backend_generates_with_tiny_vision_and_text_models(tiny_models):
    vl = ready(
        BackendConfig(
            model=str(tiny_models["qwen2-vl"]), device="cpu", temperature=1.0, max_tokens=8
        )
    )
    a, b, a_again = vl.generate([Prompt("Describe.", frames(), key="a"), Prompt("Describe.", frames(), key="b"),
                                 Prompt("Describe.", frames(), key="a")])  # fmt: skip
    assert (
        a.error is None and a.completion_tokens == 8 and a.prompt_tokens > 20
    )  # frames became tokens
    assert a.text == a_again.text  # seeded by the prompt key
    lm = ready(BackendConfig(model=str(tiny_models["qwen2"]), device="cpu", max_tokens=5))
    (g,) = lm.generate([Prompt("Say something.")])
    assert g.error is None and g.completion_tokens <= 5


def test_transformers_backend_reports_a_missing_model_clearly(tmp_path):
    with pytest.raises(ModelUnavailable, match="offline.yaml"):
        make_backend(BackendConfig(model=str(tmp_path / "nothing"))).setup("cpu")


def test_openai_request_carries_frames_as_jpeg_parts_and_the_schema():
    body = request_body(
        BackendConfig(model="m", max_tokens=7),
        Prompt("hi", frames(3), system="sys", json_schema={"type": "object"}),
    )
    user = body["messages"][-1]["content"]
    assert [p["type"] for p in user] == ["image_url"] * 3 + ["text"]
    assert user[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert body["messages"][0] == {"role": "system", "content": "sys"}
    assert body["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert body["max_tokens"] == 7


def test_openai_backend_against_a_real_server(server):
    server.mode = "ok"
    backend = make_backend(
        BackendConfig(kind="openai", model="tiny", base_url=server.url, concurrency=2)
    )
    before = len(server.requests)
    out = backend.generate([Prompt("Describe.", frames(2, seed=s), key=str(s)) for s in range(3)])
    assert all(g.error is None and g.completion_tokens for g in out)
    assert len(server.requests) - before == 3


def test_openai_backend_retries_server_errors_then_records_the_failure(server):
    server.mode = "error"
    backend = make_backend(
        BackendConfig(kind="openai", model="tiny", base_url=server.url, retries=2, backoff_s=0.01)
    )
    before = len(server.requests)
    (g,) = backend.generate([Prompt("Describe.", frames(1))])
    assert g.error and "HTTP 500" in g.error and "3 attempts" in g.error
    assert len(server.requests) - before == 3
    server.mode = "ok"


def test_openai_backend_times_out_on_a_hanging_server(server):
    server.mode, server.hang_s = "hang", 5.0
    backend = make_backend(
        BackendConfig(
            kind="openai", model="tiny", base_url=server.url, timeout_s=0.5, retries=1, backoff_s=0
        )
    )
    started = time.perf_counter()
    (g,) = backend.generate([Prompt("Describe.", frames(1))])
    assert g.error and "timed out" in g.error
    assert time.perf_counter() - started < 3.0
    server.mode = "ok"
