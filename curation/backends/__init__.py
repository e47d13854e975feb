"""Generation backends: messages with text and JPEG frames in, text out.

Every backend implements `Backend` (base.py); `make_backend(config)` builds one from a
`BackendConfig` section by its `kind`. Backends load their model in `setup(device)`, inside
the worker, on the device the worker was given.
"""

from __future__ import annotations

import importlib

from curation.backends.base import Backend, BackendConfig, Generation, Prompt

# kind -> (module, class). A module imports its heavy packages in setup(), not on import.
KINDS: dict[str, tuple[str, str]] = {
    "transformers": ("curation.backends.transformers_backend", "TransformersBackend"),
    "openai": ("curation.backends.openai_backend", "OpenAIBackend"),
    "vllm": ("curation.backends.vllm_backend", "VLLMBackend"),
}


def backend_class(kind: str) -> type[Backend]:
    module, name = KINDS[kind]
    return getattr(importlib.import_module(module), name)


def make_backend(config: BackendConfig, images: int = 0) -> Backend:
    """The backend for `config.kind`, not yet set up; `images`: frames per prompt at most."""
    return backend_class(config.kind)(config, images)


__all__ = ["Backend", "BackendConfig", "Generation", "Prompt", "backend_class", "make_backend"]
