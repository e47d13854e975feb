"""Any OpenAI-compatible chat-completions server over HTTP (`vllm serve`, SGLang, ...).

Frames travel as base64 JPEG `image_url` parts of the user message, in time order, before
the text (the stage encoded them once; they are sent as they are). Up to `concurrency`
requests are in flight per worker, so a stage's load on the server is at most its workers
(`resources.concurrency`) times that. Each request has a timeout; connection errors,
timeouts, 429 and 5xx answers are retried with exponential backoff, other 4xx answers are
not. A request that still fails becomes a Generation with `error` set: the stage records it
(and may ask again: see stages/model_stage.py). But a server that cannot be reached, or that
still says it is overloaded or unavailable (429, 502, 503, 504) after every retry, is down, not
judging the clip: that is a fault of the machine (curation/core/faults.py), which fails the
shard, and a resume asks again.
"""

from __future__ import annotations

import base64
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from curation.backends.base import BackendConfig, Generation, Prompt, sampling_for
from curation.core.faults import MachineFault
from curation.core.worker import GpuNeed

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
# Answers that say the server (or the gateway before it) is down or overloaded.
OUTAGE_STATUS = {429, 502, 503, 504}


def jpeg_data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()


def chat_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """OpenAI-style chat messages: the frames as image parts, in time order, then the text."""
    content: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": jpeg_data_url(j)}} for j in prompt.images
    ]
    content.append({"type": "text", "text": prompt.text})
    messages: list[dict[str, Any]] = []
    if prompt.system:
        messages.append({"role": "system", "content": prompt.system})
    messages.append({"role": "user", "content": content})
    return messages


def request_body(config: BackendConfig, prompt: Prompt) -> dict[str, Any]:
    temperature, seed = sampling_for(config, prompt)
    body: dict[str, Any] = {
        "model": config.model,
        "messages": chat_messages(prompt),
        "max_tokens": config.max_tokens,
        "temperature": temperature,
        "seed": seed,
    }
    if prompt.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": prompt.json_schema, "strict": True},
        }
    return body


class OpenAIBackend:
    def __init__(self, config: BackendConfig, images: int = 0):
        self.config = config
        self._client: httpx.Client | None = None

    @staticmethod
    def gpu_need(config: BackendConfig) -> GpuNeed:
        return GpuNeed()  # the model runs in the server

    @staticmethod
    def preflight(config: BackendConfig) -> None:
        """Nothing to check before the run: the server may come up after it starts."""

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def setup(self, device: str = "cpu") -> None:
        if self._client is None:
            key = os.environ.get(self.config.api_key_env)
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            self._client = httpx.Client(
                base_url=self.config.base_url.rstrip("/"),
                headers=headers,
                timeout=httpx.Timeout(self.config.timeout_s),
                limits=httpx.Limits(max_connections=self.config.concurrency),
            )

    def generate(self, prompts: list[Prompt]) -> list[Generation]:
        self.setup()
        # At most `concurrency` requests in flight from this worker (the connection pool too).
        with ThreadPoolExecutor(
            max_workers=min(self.config.concurrency, max(1, len(prompts)))
        ) as pool:
            return list(pool.map(self._generate_one, prompts))

    def _generate_one(self, prompt: Prompt) -> Generation:
        assert self._client is not None
        cfg = self.config
        body = request_body(cfg, prompt)
        error, outage = "no attempt", False
        for attempt in range(cfg.retries + 1):
            if attempt:
                time.sleep(cfg.backoff_s * 2 ** (attempt - 1))
            try:
                response = self._client.post("/chat/completions", json=body)
            except httpx.TimeoutException:
                error, outage = f"timed out after {cfg.timeout_s:.0f} s", False
                continue
            except httpx.TransportError as exc:
                error, outage = f"connection failed: {exc}", True
                continue
            if response.status_code in RETRYABLE_STATUS:
                error = f"HTTP {response.status_code}: {response.text[:200]}"
                outage = response.status_code in OUTAGE_STATUS
                continue
            if response.status_code != 200:
                return Generation(error=f"HTTP {response.status_code}: {response.text[:200]}")
            try:
                data = response.json()
                text = data["choices"][0]["message"]["content"] or ""
                usage = data.get("usage") or {}
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                error = f"unreadable answer: {exc}"
                continue
            return Generation(
                text=text,
                prompt_tokens=usage.get("prompt_tokens"),
                completion_tokens=usage.get("completion_tokens"),
            )
        if outage:
            raise MachineFault(
                f"the model server at {cfg.base_url} is unavailable",
                "start it (or check base_url), then run the same command to resume",
                f"{error} (after {cfg.retries + 1} attempts)",
            )
        return Generation(error=f"{error} (after {cfg.retries + 1} attempts)")
