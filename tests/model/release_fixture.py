"""A tiny model in a HumanOmni release's layout: its tensor names (transformers-4 spelling),
the tensors it carries that the model never uses, config.json with the multimodal fields,
three safetensors shards with their index, and a Qwen2.5-style tokenizer (its chat template
adds Qwen's default system prompt; the block markers are not tokens)."""

from __future__ import annotations

from pathlib import Path

import torch

from curation.tiny_models import build_tokenizer
from model.build import build_model
from model.omni import HumanOmniModel
from model.release import release_name
from model.sizes import omni_tiny
from model.weights import write_shards

QWEN_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
QWEN_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\n" + QWEN_SYSTEM + "<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
SPARE_ROWS = 8  # Qwen2.5's embedding has rows beyond its tokenizer; so does this one


def release_tokenizer():
    tokenizer = build_tokenizer()
    tokenizer.chat_template = QWEN_TEMPLATE
    return tokenizer


def _unused(model: HumanOmniModel) -> dict[str, torch.Tensor]:
    """The tensors a release holds that nothing reads (shapes as the release's modules)."""
    bert = model.bert.config.hidden_size
    vision = model.vision.hidden_size
    audio = model.audio_encoder.hidden_size
    g = torch.Generator().manual_seed(1)
    return {
        "model.bert_model.pooler.dense.weight": torch.randn(bert, bert, generator=g),
        "model.bert_model.pooler.dense.bias": torch.randn(bert, generator=g),
        "model.feature_compressor.vlm_query_projector.weight": torch.randn(8, vision, generator=g),
        "model.feature_compressor.vlm_query_projector.bias": torch.randn(8, generator=g),
        "model.feature_compressor.vlm_key_projector.weight": torch.randn(8, vision, generator=g),
        "model.feature_compressor.vlm_key_projector.bias": torch.randn(8, generator=g),
        "model.audio_tower.audio_tower.projector.weight": torch.randn(16, audio, generator=g),
        "model.audio_tower.audio_tower.projector.bias": torch.randn(16, generator=g),
        "model.audio_tower.audio_tower.classifier.weight": torch.randn(2, 16, generator=g),
        "model.audio_tower.audio_tower.classifier.bias": torch.randn(2, generator=g),
    }


def write_release(folder: Path, tiny_dir: Path) -> tuple[HumanOmniModel, dict[str, torch.Tensor]]:
    """Write the release into `folder`; returns the original model and every release tensor."""
    torch.manual_seed(0)
    model = build_model(omni_tiny(tiny_dir))
    tokenizer = release_tokenizer()
    model.llm.resize_token_embeddings(len(tokenizer) + SPARE_ROWS)
    tensors = {release_name(k): v.detach().clone() for k, v in model.named_parameters()}
    tensors |= _unused(model)
    names = sorted(tensors)
    thirds = [names[i::3] for i in range(3)]
    write_shards(folder, [{n: tensors[n] for n in part} for part in thirds], {"format": "pt"})
    config = model.llm.config.to_dict()
    config |= {
        "model_type": "HumanOmni_qwen2",
        "architectures": ["HumanOmniQwen2ForCausalLM"],
        "vocab_size": len(tokenizer) + SPARE_ROWS,
        "mm_vision_tower": str(tiny_dir / "siglip"),
        "mm_audio_tower": str(tiny_dir / "whisper"),
        "mm_projector_type": "all_in_one",
        "mm_audio_projector_type": "mlp2x_gelu",
        "mm_hidden_size": model.vision.hidden_size,
        "mm_vision_select_layer": -2,
        "mm_use_x_start_end": True,
        "num_frames": 8,
    }
    import json

    (folder / "config.json").write_text(json.dumps(config, indent=2))
    tokenizer.save_pretrained(folder)
    return model.eval(), tensors
