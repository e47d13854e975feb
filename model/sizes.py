"""Named sizes of the omni model: one builder function each, no string matching on model names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from model.config import Component, OmniConfig, shipped

TINY_DIR = Path("models/tiny/omni")


def omni_7b() -> OmniConfig:
    """The released model: SigLIP so400m, Qwen2.5-7B, Whisper-large-v3 encoder, BERT-base gate."""
    return OmniConfig(
        name="7b",
        vision=Component("google/siglip-so400m-patch14-384", shipped("siglip-so400m-patch14-384")),
        llm=Component("Qwen/Qwen2.5-7B-Instruct", shipped("qwen2.5-7b-instruct")),
        audio=Component("openai/whisper-large-v3", shipped("whisper-large-v3")),
        gate_text=Component("google-bert/bert-base-uncased", shipped("bert-base-uncased")),
        num_frames=32,
        stc_depth=4,
        slow_fast=True,
    )


def omni_small() -> OmniConfig:
    """The 0.5B family member: SigLIP base/16 at 224 px, Qwen2.5-0.5B, STC depth 2, 8 frames."""
    return OmniConfig(
        name="small",
        vision=Component("google/siglip-base-patch16-224", shipped("siglip-base-patch16-224")),
        llm=Component("Qwen/Qwen2.5-0.5B-Instruct", shipped("qwen2.5-0.5b-instruct")),
        audio=Component("openai/whisper-large-v3", shipped("whisper-large-v3")),
        gate_text=Component("google-bert/bert-base-uncased", shipped("bert-base-uncased")),
        num_frames=8,
        stc_depth=2,
        slow_fast=False,
    )


def omni_tiny(folder: str | Path = TINY_DIR) -> OmniConfig:
    """Random-weight components written by `model.tiny` (hidden 32–64): tests and CPU smoke runs."""
    folder = Path(folder)
    return OmniConfig(
        name="tiny",
        vision=Component(str(folder / "siglip")),
        llm=Component(str(folder / "qwen2")),
        audio=Component(str(folder / "whisper")),
        gate_text=Component(str(folder / "bert")),
        num_frames=8,
        stc_depth=1,
        slow_fast=True,
        gate_max_tokens=32,
    )


SIZES: dict[str, Callable[[], OmniConfig]] = {
    "7b": omni_7b,
    "small": omni_small,
    "tiny": omni_tiny,
}
