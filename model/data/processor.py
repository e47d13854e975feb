"""One object that prepares model inputs, for training and inference alike.

It holds the LLM tokenizer, the gate's BERT tokenizer and Whisper's feature extractor, and
applies the one frame preprocessing, the one chat format and the one gate text. It pickles
(tokenizers and the feature extractor are plain picklable objects), so DataLoader workers get
a copy whatever the start method.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from model.config import (
    AUDIO_TOKEN,
    DEFAULT_SYSTEM_PROMPT,
    IMAGE_TOKEN,
    SPECIAL_TOKENS,
    VIDEO_TOKEN,
    OmniConfig,
)
from model.data.audio import SAMPLE_RATE, audio_features, load_audio, window_seconds
from model.data.conversation import (
    IM_END,
    IM_START,
    PLACEHOLDERS,
    Conversation,
    Tokenized,
    encode_chat,
    gate_text,
    tokenize_conversation,
)
from model.data.faces import face_crops
from model.data.frames import load_timed_frames, load_video_frames, preprocess_frames

# The tokens each compat mode needs as single tokens. The release reads the block markers
# (<vi_start>, ...) as plain text: under "humanomni" they must not be tokens.
NEEDED_TOKENS = {"project": SPECIAL_TOKENS, "humanomni": list(PLACEHOLDERS)}


def check_tokenizer(tokenizer: Any, source: str, compat: str = "project") -> dict[str, int]:
    """Ids of the chat markers and the omni placeholders; a clear error if any is missing or
    would be split into several tokens (its feature block would then have no single slot)."""
    needed = [IM_START, IM_END, *NEEDED_TOKENS[compat]]
    ids = dict(zip(needed, tokenizer.convert_tokens_to_ids(needed), strict=True))
    unk = tokenizer.unk_token_id
    missing = [
        token
        for token, i in ids.items()
        if i is None
        or (i == unk and token != tokenizer.unk_token)
        or tokenizer(token, add_special_tokens=False)["input_ids"] != [i]
    ]
    if missing:
        raise ValueError(
            f"the LLM tokenizer at {source} does not know {missing} as single tokens: add them "
            "with tokenizer.add_special_tokens({'additional_special_tokens': SPECIAL_TOKENS}), "
            "resize the LLM's embeddings to len(tokenizer), and save both"
        )
    plain = set(SPECIAL_TOKENS) - set(NEEDED_TOKENS[compat])
    known = sorted(t for t in plain if t in tokenizer.get_vocab())
    if known:
        raise ValueError(
            f"compat {compat!r} reads {known} as plain text, but the tokenizer at {source} has "
            "them as tokens (a project tokenizer under the release's rules?)"
        )
    return ids


def with_omni_tokens(tokenizer: Any, compat: str = "project") -> Any:
    """Add the omni tokens a base tokenizer (Qwen2.5's, a release's) lacks, always in the same
    order, so their ids are the same in every process that loads the same tokenizer. Under
    "humanomni" only the placeholders: their rows are never read (features replace them)."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in NEEDED_TOKENS[compat] if t not in vocab]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing}, False)
    return tokenizer


def image_size_of(cfg: OmniConfig) -> int:
    """The vision tower's input size, from its config (a full SiglipConfig nests it)."""
    vision = cfg.vision.load_config()
    return int(getattr(vision, "vision_config", vision).image_size)


class OmniProcessor:
    def __init__(
        self,
        tokenizer: Any,
        gate_tokenizer: Any,
        feature_extractor: Any,
        *,
        image_size: int,
        num_frames: int,
        gate_max_tokens: int,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        source: str = "tokenizer",
        compat: str = "project",
    ):
        self.tokenizer = tokenizer
        self.gate_tokenizer = gate_tokenizer
        self.feature_extractor = feature_extractor
        self.image_size = image_size
        self.num_frames = num_frames
        self.gate_max_tokens = gate_max_tokens
        self.system_prompt = system_prompt
        self.compat = compat
        ids = check_tokenizer(tokenizer, source, compat)
        self.video_token_id = ids[VIDEO_TOKEN]
        self.audio_token_id = ids[AUDIO_TOKEN]
        self.image_token_id = ids[IMAGE_TOKEN]
        self.im_end_id = ids[IM_END]
        pad = tokenizer.pad_token_id
        if pad is None:  # Qwen2.5 pads with <|endoftext|>; a tokenizer without one is unusable
            raise ValueError(f"the LLM tokenizer at {source} has no pad token")
        self.pad_id: int = pad
        gate_pad = gate_tokenizer.pad_token_id
        self.gate_pad_id: int = 0 if gate_pad is None else gate_pad
        if feature_extractor.sampling_rate != SAMPLE_RATE:
            raise ValueError(
                f"the audio feature extractor expects {feature_extractor.sampling_rate} Hz; "
                f"Whisper's is {SAMPLE_RATE} Hz"
            )

    @property
    def token_ids(self) -> dict[str, int]:
        """The placeholder ids the model splices feature blocks into."""
        return {"video": self.video_token_id, "audio": self.audio_token_id}

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    @classmethod
    def from_config(cls, cfg: OmniConfig) -> OmniProcessor:
        from transformers import AutoTokenizer, WhisperFeatureExtractor

        return cls(
            with_omni_tokens(AutoTokenizer.from_pretrained(cfg.llm.source), cfg.compat),
            AutoTokenizer.from_pretrained(cfg.gate_text.source),
            WhisperFeatureExtractor.from_pretrained(cfg.audio.source),
            image_size=image_size_of(cfg),
            num_frames=cfg.num_frames,
            gate_max_tokens=cfg.gate_max_tokens,
            system_prompt=cfg.system_prompt,
            source=cfg.llm.source,
            compat=cfg.compat,
        )

    # -- text -----------------------------------------------------------------------------
    def tokenize(self, conversations: Conversation, max_text_tokens: int = 2048) -> Tokenized:
        """Training ids and labels (only the assistant replies and their <|im_end|> count)."""
        return tokenize_conversation(
            conversations, self.tokenizer, self.system_prompt, max_text_tokens, self.compat
        )

    def prompt_ids(self, conversations: Conversation | str) -> list[int]:
        """Inference: a conversation ending with a human turn (or one raw user message, with
        its `<video>`/`<audio>` tags) → ids ending with the assistant header."""
        if isinstance(conversations, str):
            conversations = [{"from": "human", "value": conversations}]
        return encode_chat(
            conversations,
            self.tokenizer,
            self.system_prompt,
            add_generation_prompt=True,
            compat=self.compat,
        ).input_ids

    def gate_ids(self, conversations: Conversation | str) -> list[int]:
        """BERT ids of the gate's cleaned instruction (the same text in training and inference)."""
        return self.gate_tokenizer(
            gate_text(conversations), truncation=True, max_length=self.gate_max_tokens
        )["input_ids"]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    # -- media ----------------------------------------------------------------------------
    def frames(self, frames: np.ndarray) -> torch.Tensor:
        """Decoded RGB frames (T, H, W, 3) → pixel values (T, 3, S, S)."""
        return preprocess_frames(frames, self.image_size)

    def video(self, path: str, window: tuple[float, float] | None = None) -> torch.Tensor:
        """A clip file (its frames within `window` seconds, when given) → pixel values
        (num_frames, 3, S, S)."""
        frames = load_video_frames(path, self.num_frames, short_side=self.image_size, window=window)
        return self.frames(frames)

    def video_and_faces(
        self, path: str, face_track: Sequence[Sequence[float]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A clip file → pixel values of its frames and of the face crops of the same frames
        (`model.data.faces`), each (num_frames, 3, S, S). Decoded at twice the tower's size,
        so a face that fills a quarter of the frame is not upscaled."""
        frames, times = load_timed_frames(path, self.num_frames, short_side=2 * self.image_size)
        crops = [self.frames(crop[None]) for crop in face_crops(frames, times, face_track)]
        return self.frames(frames), torch.cat(crops)

    def waveform_features(self, waveform: np.ndarray) -> torch.Tensor:
        """16 kHz mono samples → log-mel features (n_mels, frames)."""
        return audio_features(waveform, self.feature_extractor)

    def audio(self, path: str) -> torch.Tensor:
        """The first audio stream of a file → log-mel features (n_mels, frames)."""
        waveform = load_audio(path, SAMPLE_RATE, max_seconds=window_seconds(self.feature_extractor))
        return self.waveform_features(waveform)
