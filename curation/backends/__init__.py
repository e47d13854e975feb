"""Generation backends: messages with text and images or video frames in, text out.

Every backend implements `Backend` (base.py). `make_backend(config)` builds one from a
`BackendConfig` section; backends load their model in `setup()`, inside the worker.
"""

from __future__ import annotations

from curation.backends.base import Backend, BackendConfig, Generation, Prompt


def make_backend(config: BackendConfig) -> Backend:
    if config.kind == "transformers":
        from curation.backends.transformers_backend import TransformersBackend

        return TransformersBackend(config)
    if config.kind == "openai":
        from curation.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(config)
    raise ValueError(f"backend kind {config.kind!r} is not available")


__all__ = ["Backend", "BackendConfig", "Generation", "Prompt", "make_backend"]
