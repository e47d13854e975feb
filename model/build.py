"""Building the omni model from its config: pretrained components, or random/meta ones.

`build_model(cfg)` loads every pretrained component from its `source` (what training and
inference use). `build_model(cfg, pretrained=False)` builds the same architecture from the
component configs with fresh weights; under `torch.device("meta")` that allocates nothing,
which is how `model.summary` counts the full 7B model on any machine.
"""

from __future__ import annotations

from typing import Any

import torch

from model.audio import AudioEncoder
from model.config import OmniConfig
from model.gate import InstructionGate
from model.omni import HumanOmniModel
from model.projectors import AudioProjector, FaceProjector
from model.stc_projector import STCProjector
from model.vision import VisionTower


def _vision_config(config: Any) -> Any:
    # A full SigLIP checkpoint (text + vision) carries the tower's config inside.
    return getattr(config, "vision_config", config)


def load_components(cfg: OmniConfig, pretrained: bool, dtype: torch.dtype) -> dict[str, Any]:
    from transformers import (
        AutoModelForCausalLM,
        BertModel,
        SiglipVisionModel,
        WhisperModel,
    )
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    if pretrained:
        return {
            "siglip": SiglipVisionModel.from_pretrained(cfg.vision.source, dtype=dtype),
            "llm": AutoModelForCausalLM.from_pretrained(cfg.llm.source, dtype=dtype),
            # Whisper checkpoints hold encoder and decoder; only the encoder is kept.
            "whisper": WhisperModel.from_pretrained(cfg.audio.source, dtype=dtype).get_encoder(),
            "bert": BertModel.from_pretrained(
                cfg.gate_text.source, add_pooling_layer=False, dtype=dtype
            ),
        }
    return {
        "siglip": SiglipVisionModel(_vision_config(cfg.vision.load_config())),
        "llm": AutoModelForCausalLM.from_config(cfg.llm.load_config()),
        "whisper": WhisperEncoder(cfg.audio.load_config()),
        "bert": BertModel(cfg.gate_text.load_config(), add_pooling_layer=False),
    }


def build_model(
    cfg: OmniConfig,
    *,
    pretrained: bool = True,
    dtype: torch.dtype = torch.float32,
    token_ids: dict[str, int] | None = None,
    vocab_size: int | None = None,
) -> HumanOmniModel:
    """The omni model; `token_ids` maps "video"/"audio" to the tokenizer's placeholder ids, and
    `vocab_size` is the tokenizer's length (with the omni tokens added)."""
    parts = load_components(cfg, pretrained, dtype)
    vision = VisionTower(parts["siglip"], cfg.vision_feature_layer)
    llm = parts["llm"]
    if vocab_size is not None and vocab_size > llm.get_input_embeddings().num_embeddings:
        # Qwen2.5's embedding tables have spare rows for the added tokens; others may not.
        llm.resize_token_embeddings(vocab_size)
    audio = AudioEncoder(parts["whisper"], cfg.audio_pool)
    bert = parts["bert"]
    dv, d = vision.hidden_size, llm.config.hidden_size
    # New modules start in float32 (training keeps master weights there; autocast computes).
    model = HumanOmniModel(
        cfg,
        vision=vision,
        face_projector=FaceProjector(dv, d),
        body_projector=STCProjector(dv, d, cfg.stc_depth),
        interaction_projector=STCProjector(dv, d, cfg.stc_depth),
        bert=bert,
        gate=InstructionGate(bert.config.hidden_size, d),
        audio_encoder=audio,
        audio_projector=AudioProjector(audio.hidden_size, d),
        llm=llm,
        video_token_id=(token_ids or {}).get("video"),
        audio_token_id=(token_ids or {}).get("audio"),
    )
    for tower in (model.vision, model.audio_encoder, model.bert):
        tower.requires_grad_(False)
    return model


def parameter_counts(model: HumanOmniModel) -> dict[str, int]:
    """Parameters per part (see `model.config.PARTS`) and the total."""
    from model.config import PARTS

    counts = {}
    for part in PARTS:
        module = getattr(model, part)
        counts[part] = 0 if module is None else sum(p.numel() for p in module.parameters())
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts
