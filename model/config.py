"""The omni model's configuration: which pretrained components it is made of, and its shapes.

A component is named by `source` (a Hugging Face model id or a local folder: where its weights
and tokenizer/feature extractor come from) and optionally `config` (a JSON file describing its
architecture). The named sizes in `model.sizes` point `config` at the files shipped in
`model/components/`, so the full 7B model can be built on the meta device with no download.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

COMPONENTS_DIR = Path(__file__).resolve().parent / "components"

# Placeholders in the conversation text, each one token, replaced by its feature block.
VIDEO_TOKEN = "<video>"
AUDIO_TOKEN = "<audio>"
IMAGE_TOKEN = "<image>"
# Markers around the blocks (learned embeddings of the LLM's vocabulary).
VIDEO_START, VIDEO_END = "<vi_start>", "<vi_end>"
AUDIO_START, AUDIO_END = "<au_start>", "<au_end>"
SPECIAL_TOKENS = [
    VIDEO_TOKEN,
    AUDIO_TOKEN,
    IMAGE_TOKEN,
    VIDEO_START,
    VIDEO_END,
    AUDIO_START,
    AUDIO_END,
]

# The parts of the model, as named in state dicts, freezing config and summaries.
PARTS = (
    "vision",
    "face_projector",
    "body_projector",
    "interaction_projector",
    "gate",
    "compressor",
    "audio_encoder",
    "audio_projector",
    "llm",
    "bert",
)
# Order of the gate's softmax outputs (the released model's: w0·interaction + w1·body + w2·face).
BRANCHES = ("interaction", "body", "face")

# How text becomes ids and labels (`model.data.conversation` has both):
# - "project": this project's chat layout, markers as special tokens, the system prompt below;
# - "humanomni": exactly the released model's rules (its tokenizer's chat template and default
#   system prompt, markers read as plain text, the newline after <|im_end|> supervised), what
#   released weights were trained on. `python -m model.convert` sets it.
COMPAT_MODES = ("project", "humanomni")
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


@dataclass(frozen=True)
class Component:
    source: str
    config: str | None = None

    def load_config(self) -> Any:
        """The component's transformers config: from `config` if set, else from `source`."""
        from transformers import AutoConfig

        if self.config is None:
            return AutoConfig.from_pretrained(self.source)
        data = json.loads(Path(self.config).read_text())
        return AutoConfig.for_model(data.pop("model_type"), **data)


@dataclass(frozen=True)
class OmniConfig:
    name: str
    vision: Component
    llm: Component
    audio: Component
    gate_text: Component
    num_frames: int = 32
    stc_depth: int = 4
    # Slow-fast compression of the fused visual tokens (the 7B model has it, the small one not).
    slow_fast: bool = True
    slow_frame_stride: int = 4
    fast_pool: int = 2
    audio_pool: int = 3
    vision_feature_layer: int = -2
    # Text the gate sees has at most this many BERT tokens (BERT's own limit, as released).
    gate_max_tokens: int = 512
    compat: str = "project"
    # A system turn before the conversation; None: none (under "humanomni" the chat template
    # then adds its own default, as the release does).
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT

    def __post_init__(self) -> None:
        if self.compat not in COMPAT_MODES:
            raise ValueError(f"compat must be one of {COMPAT_MODES}, got {self.compat!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OmniConfig:
        data = dict(data)
        for key in ("vision", "llm", "audio", "gate_text"):
            data[key] = Component(**data[key])
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> OmniConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


def shipped(name: str) -> str:
    """Path of a component architecture file shipped with the package."""
    path = COMPONENTS_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no shipped component config {path}")
    return str(path)
