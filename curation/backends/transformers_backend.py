"""A local Hugging Face model on CPU or GPU.

Vision-language models (their config has a `vision_config`) get the frames as one video part
of the user message, through the model's own processor and chat template; text-only models
get the text. Sampling is seeded per prompt (config seed + prompt key), so the same clip gets
the same text in any batch and on any re-run. A prompt with a JSON schema is decoded under
that schema's grammar (xgrammar's logits processor), so its output always parses.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from curation.backends.base import (
    BackendConfig,
    Generation,
    Prompt,
    check_model_available,
    sampling_for,
)
from curation.core import faults
from curation.core.worker import GpuNeed, release_torch_memory
from curation.media.frames import decode_jpeg


class TransformersBackend:
    def __init__(self, config: BackendConfig, images: int = 0):
        self.config = config
        self._model: Any = None
        self._processor: Any = None
        self._vision = False
        self._grammars: dict[str, Any] = {}  # compiled JSON-schema grammars, by schema

    @staticmethod
    def gpu_need(config: BackendConfig) -> GpuNeed:
        return GpuNeed.for_device(config.device)

    @staticmethod
    def preflight(config: BackendConfig) -> None:
        check_model_available(config.model)

    def close(self) -> None:
        if self._model is None:
            return
        self._model = self._processor = None
        self._grammars.clear()
        release_torch_memory()

    def setup(self, device: str = "cpu") -> None:
        if self._model is not None:
            return
        import torch
        from transformers import (
            AutoConfig,
            AutoModelForCausalLM,
            AutoModelForImageTextToText,
            AutoProcessor,
        )

        cfg = self.config
        check_model_available(cfg.model)
        model_config = AutoConfig.from_pretrained(cfg.model)
        self._vision = hasattr(model_config, "vision_config")
        dtype = "auto" if cfg.dtype == "auto" else getattr(torch, cfg.dtype)
        auto = AutoModelForImageTextToText if self._vision else AutoModelForCausalLM
        self._model = auto.from_pretrained(cfg.model, dtype=dtype).to(device).eval()
        self._processor = AutoProcessor.from_pretrained(cfg.model)

    def _messages(self, prompt: Prompt) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        if prompt.system:
            messages.append({"role": "system", "content": prompt.system})
        if self._vision and prompt.images:
            frames = [decode_jpeg(j) for j in prompt.images]
            content: list[dict[str, Any]] = [{"type": "video", "video": frames}]
            content.append({"type": "text", "text": prompt.text})
            messages.append({"role": "user", "content": content})
        else:
            messages.append({"role": "user", "content": prompt.text})
        return messages

    def _constraint(self, schema: dict[str, Any] | None) -> list[Any]:
        """Logits processors that keep the output inside `schema` (none without one)."""
        if schema is None:
            return []
        import xgrammar as xgr

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            tokenizer = getattr(self._processor, "tokenizer", self._processor)
            vocab = self._model.config.get_text_config().vocab_size
            info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab)
            compiler = xgr.GrammarCompiler(info)
            self._grammars[key] = compiler.compile_json_schema(key, any_whitespace=False)
        # The processor keeps matcher state: a fresh one per generation.
        return [xgr.contrib.hf.LogitsProcessor(self._grammars[key])]

    def generate(self, prompts: list[Prompt]) -> list[Generation]:
        if self._model is None:
            raise RuntimeError("TransformersBackend.generate before setup()")
        return [self._generate_one(p) for p in prompts]

    def _generate_one(self, prompt: Prompt) -> Generation:
        import torch

        cfg = self.config
        try:
            inputs = self._processor.apply_chat_template(
                self._messages(prompt),
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
                return_tensors="pt",
            ).to(self._model.device)
            temperature, seed = sampling_for(cfg, prompt)
            torch.manual_seed(seed + zlib.crc32(prompt.key.encode()))
            sampling = (
                {"do_sample": True, "temperature": temperature}
                if temperature > 0
                else {"do_sample": False}
            )
            with torch.inference_mode():
                out = self._model.generate(
                    **inputs, max_new_tokens=cfg.max_tokens, **sampling,
                    logits_processor=self._constraint(prompt.json_schema),
                )  # fmt: skip
            new = out[0, inputs["input_ids"].shape[1] :]
            text = self._processor.decode(new, skip_special_tokens=True)
            return Generation(
                text=text,
                prompt_tokens=int(inputs["input_ids"].shape[1]),
                completion_tokens=len(new),
            )
        except Exception as exc:  # one bad prompt must not sink the batch; recorded as a failure
            faults.check(exc)  # unless the machine failed: out of (GPU) memory, a lost disk
            return Generation(error=f"{type(exc).__name__}: {exc}")
