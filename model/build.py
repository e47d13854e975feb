"""Building the omni model from its config: pretrained components, or random/meta ones.

`build_model(cfg)` loads every pretrained component from its `source` (what training uses).
`build_model(cfg, pretrained=False)` builds the same architecture from the component configs
with fresh weights; under `torch.device("meta")` that allocates nothing, which is how
`model.summary` counts the full 7B model on any machine. `empty=True` puts every parameter
not loaded from a source on the meta device but keeps buffers real: a checkpoint that holds
those parts (a converted release) then fills them without a second copy in memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from typing import Any

import torch
from torch import nn

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


# The pretrained towers, by part name: what `pretrained` may load from their sources.
TOWERS = ("vision", "llm", "audio_encoder", "bert")


@contextlib.contextmanager
def empty_parameters() -> Iterator[None]:
    """Parameters registered inside are moved to the meta device as they are registered, so
    building allocates nothing and initialising them costs nothing; buffers (position ids,
    rotary frequencies) stay real. A checkpoint then assigns the real tensors
    (`model.train.checkpoint.load_parts`)."""
    register = nn.Module.register_parameter

    def on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        register(module, name, param)
        if param is not None and not param.is_meta:
            module._parameters[name] = nn.Parameter(
                param.to("meta"), requires_grad=param.requires_grad
            )

    nn.Module.register_parameter = on_meta
    try:
        yield
    finally:
        nn.Module.register_parameter = register


def _tower(cfg: OmniConfig, part: str, pretrained: bool, dtype: torch.dtype) -> Any:
    from transformers import AutoModelForCausalLM, BertModel, SiglipVisionModel, WhisperModel
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    if pretrained:
        return {
            "vision": lambda: SiglipVisionModel.from_pretrained(cfg.vision.source, dtype=dtype),
            "llm": lambda: AutoModelForCausalLM.from_pretrained(cfg.llm.source, dtype=dtype),
            # Whisper checkpoints hold encoder and decoder; only the encoder is kept.
            "audio_encoder": lambda: WhisperModel.from_pretrained(
                cfg.audio.source, dtype=dtype
            ).get_encoder(),
            "bert": lambda: BertModel.from_pretrained(
                cfg.gate_text.source, add_pooling_layer=False, dtype=dtype
            ),
        }[part]()
    return {
        "vision": lambda: SiglipVisionModel(_vision_config(cfg.vision.load_config())),
        "llm": lambda: AutoModelForCausalLM.from_config(cfg.llm.load_config()),
        "audio_encoder": lambda: WhisperEncoder(cfg.audio.load_config()),
        "bert": lambda: BertModel(cfg.gate_text.load_config(), add_pooling_layer=False),
    }[part]()


def build_model(
    cfg: OmniConfig,
    *,
    pretrained: bool | Collection[str] = True,
    empty: bool = False,
    dtype: torch.dtype = torch.float32,
    token_ids: dict[str, int] | None = None,
    vocab_size: int | None = None,
) -> HumanOmniModel:
    """The omni model; `token_ids` maps "video"/"audio" to the tokenizer's placeholder ids, and
    `vocab_size` is the tokenizer's length (with the omni tokens added).

    `pretrained`: the towers (`TOWERS`) loaded from their sources (True: all, False: none);
    the others are built from their configs. `empty`: everything not loaded from a source has
    its parameters on the meta device, for a checkpoint to fill (`empty_parameters`)."""
    from_source = set(TOWERS) if pretrained is True else set(pretrained or ())
    unknown = from_source - set(TOWERS)
    if unknown:
        raise ValueError(f"only the towers {TOWERS} load from sources, not {sorted(unknown)}")
    built = contextlib.nullcontext if not empty else empty_parameters
    towers = {}
    for part in TOWERS:
        if part in from_source:
            towers[part] = _tower(cfg, part, True, dtype)
        else:
            with built():
                towers[part] = _tower(cfg, part, False, dtype)
    with built():
        return _assemble(cfg, towers, token_ids, vocab_size)


def _assemble(
    cfg: OmniConfig,
    towers: dict[str, Any],
    token_ids: dict[str, int] | None,
    vocab_size: int | None,
) -> HumanOmniModel:
    vision = VisionTower(towers["vision"], cfg.vision_feature_layer)
    llm = towers["llm"]
    if vocab_size is not None and vocab_size > llm.get_input_embeddings().num_embeddings:
        # Qwen2.5's embedding tables have spare rows for the added tokens; others may not.
        llm.resize_token_embeddings(vocab_size)
    audio = AudioEncoder(towers["audio_encoder"], cfg.audio_pool)
    bert = towers["bert"]
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


def init_missing(model: HumanOmniModel) -> list[str]:
    """Parts whose parameters are still on the meta device get fresh ones (their modules' own
    initialisation); returns their names. A checkpoint normally fills every part."""
    from model.config import PARTS

    missing = []
    for part in PARTS:
        module = getattr(model, part)
        if module is None or not any(p.is_meta for p in module.parameters()):
            continue
        module.to_empty(device="cpu")
        for sub in module.modules():
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()
        missing.append(part)
    return missing


def parameter_counts(model: HumanOmniModel) -> dict[str, int]:
    """Parameters per part (see `model.config.PARTS`) and the total."""
    from model.config import PARTS

    counts = {}
    for part in PARTS:
        module = getattr(model, part)
        counts[part] = 0 if module is None else sum(p.numel() for p in module.parameters())
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts
