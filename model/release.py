"""The layout of a HumanOmni release (HumanOmni-7B-Video / -Audio / -Omni) and how it maps here.

A release folder holds `config.json` (a Qwen2 config with `model_type` "HumanOmni_qwen2" and the
multimodal fields `mm_vision_tower`, `mm_audio_tower`, `mm_vision_select_layer`, `num_frames`),
its weights (one or sharded safetensors with their index) and the LLM's tokenizer files. Its
tensor names map onto this model's parts by renaming alone (`PREFIXES`); a few tensors are
unused by the model (`UNUSED`).
"""

from __future__ import annotations

import re

# (release prefix, this project's prefix), first match wins. The release's "video" STC branch
# is the interaction branch (its gate weights w0·video + w1·body + w2·face).
PREFIXES: tuple[tuple[str, str], ...] = (
    # transformers 4 nested SigLIP's tower in `vision_model`; this version does not.
    ("model.vision_tower.vision_tower.vision_model.", "vision.model."),
    ("model.vision_tower.vision_tower.", "vision.model."),
    ("model.mm_projector.mlp_2xgelu_face.", "face_projector.mlp."),
    *(
        (f"model.mm_projector.{stage}_{theirs}.", f"{ours}.{stage}.")
        for theirs, ours in (("video", "interaction_projector"), ("body", "body_projector"))
        for stage in ("s1", "sampler", "s2", "readout")
    ),
    ("model.bert_model.", "bert."),
    ("model.bert_gate.", "gate.mlp."),
    ("model.audio_tower.audio_tower.encoder.", "audio_encoder.model."),
    ("model.audio_projector.", "audio_projector.mlp."),
    ("model.embed_tokens.", "llm.model.embed_tokens."),
    ("model.layers.", "llm.model.layers."),
    ("model.norm.", "llm.model.norm."),
    ("lm_head.", "llm.lm_head."),
)

# Release tensors nothing in the model reads: BERT's pooler (the gate takes [CLS] from the last
# hidden state), the compressor's query/key projections (its forward never calls them) and the
# audio classification head of Whisper (only the encoder runs).
UNUSED: tuple[str, ...] = (
    "model.bert_model.pooler.",
    "model.feature_compressor.",
    "model.audio_tower.audio_tower.projector.",
    "model.audio_tower.audio_tower.classifier.",
    "model.audio_tower.audio_tower.layer_weights",
)

RELEASE_MODEL_TYPES = ("HumanOmni_qwen2",)
# Fields of the release's config.json that are not the LLM's.
MULTIMODAL_FIELDS = re.compile(r"^(mm_|audio_|num_frames$|tune_|freeze_|tokenizer_)")


def our_name(release_name: str) -> str | None:
    """This project's name of a release tensor; None when the model does not use it."""
    if release_name.startswith(UNUSED):
        return None
    for theirs, ours in PREFIXES:
        if release_name.startswith(theirs):
            return ours + release_name[len(theirs) :]
    raise KeyError(release_name)


def release_name(our: str) -> str:
    """The release's name of one of this model's parameters (the inverse of `our_name`; the
    first, current spelling where the release has two)."""
    for theirs, ours in PREFIXES:
        if our.startswith(ours):
            return theirs + our[len(ours) :]
    raise KeyError(our)


def stc_depth(names: list[str]) -> int:
    """RegNet blocks per STC stage, from the release's tensor names (b1, b2, ...)."""
    blocks = {m[1] for n in names if (m := re.match(r"model\.mm_projector\.s1_video\.b(\d+)\.", n))}
    if not blocks:
        raise ValueError("no STC projector in the release (model.mm_projector.s1_video.*)")
    return len(blocks)
