"""Qwen chat formatting of a HumanOmni conversation, its training labels, and the gate's text.

The chat format is written out here rather than taken from the tokenizer's chat template, so
training and inference produce the same ids whatever template a checkpoint ships:

    <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{human}<|im_end|>\n
    <|im_start|>assistant\n{gpt}<|im_end|>\n ...

In the first human turn `<video>` becomes `<vi_start><video><vi_end>` and `<audio>` becomes
`<au_start><audio><au_end>`, so the turn reads: video block, newline, audio block, newline,
question. Each text run is tokenised on its own with special tokens split, so text in the data
can never inject a chat marker or a placeholder; markers and placeholders are inserted as ids.
The assistant's reply is tokenised apart from its `assistant\n` header, exactly the tokens the
model must produce when it generates after that header.

That is compat "project". Compat "humanomni" (`model.data.release_chat`) reproduces the
released model's rules instead, for released weights.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from model.config import (
    AUDIO_END,
    AUDIO_START,
    AUDIO_TOKEN,
    DEFAULT_SYSTEM_PROMPT,
    IMAGE_TOKEN,
    SPECIAL_TOKENS,
    VIDEO_END,
    VIDEO_START,
    VIDEO_TOKEN,
)
from model.data.errors import SampleError
from model.data.release_chat import encode_release
from model.splice import IGNORE_INDEX

PLACEHOLDERS = (VIDEO_TOKEN, AUDIO_TOKEN, IMAGE_TOKEN)
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
ROLES = {"human": "user", "gpt": "assistant"}

_BLOCKS = {VIDEO_TOKEN: (VIDEO_START, VIDEO_END), AUDIO_TOKEN: (AUDIO_START, AUDIO_END)}
_PLACEHOLDERS = re.compile(f"({re.escape(VIDEO_TOKEN)}|{re.escape(AUDIO_TOKEN)})")
_MARKERS = (VIDEO_START, VIDEO_END, AUDIO_START, AUDIO_END)

Conversation = Sequence[dict[str, Any]]


@dataclass(frozen=True)
class Tokenized:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX except the assistant replies and their <|im_end|>


def _check_turns(conversations: Conversation, last: str) -> None:
    if not conversations:
        raise SampleError("bad_conversation", "no turns")
    for i, turn in enumerate(conversations):
        role = "human" if i % 2 == 0 else "gpt"
        if not isinstance(turn, dict) or turn.get("from") != role:
            raise SampleError("bad_conversation", f"turn {i} must be from {role}")
        if not isinstance(turn.get("value"), str):
            raise SampleError("bad_conversation", f"turn {i} has no text value")
    if conversations[-1]["from"] != last:
        raise SampleError("bad_conversation", f"the last turn must be from {last}")


def _marked(value: str) -> str:
    """The first human turn with its placeholders wrapped in their block markers (markers
    already in the text are dropped first, so pre-marked data is not marked twice)."""
    for marker in _MARKERS:
        value = value.replace(marker, "")
    return _PLACEHOLDERS.sub(lambda m: _BLOCKS[m[0]][0] + m[0] + _BLOCKS[m[0]][1], value)


def format_chat(
    conversations: Conversation,
    system: str | None = DEFAULT_SYSTEM_PROMPT,
    add_generation_prompt: bool = False,
) -> str:
    """The conversation as chat text (what `encode_chat`'s ids decode to)."""
    out = f"{IM_START}system\n{system}{IM_END}\n" if system is not None else ""
    for i, turn in enumerate(conversations):
        value = _marked(turn["value"]) if i == 0 else turn["value"]
        out += f"{IM_START}{ROLES[turn['from']]}\n{value}{IM_END}\n"
    return out + (f"{IM_START}assistant\n" if add_generation_prompt else "")


class _Encoder:
    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.special = dict(
            zip(
                [IM_START, IM_END, *SPECIAL_TOKENS],
                tokenizer.convert_tokens_to_ids([IM_START, IM_END, *SPECIAL_TOKENS]),
                strict=True,
            )
        )

    def text(self, text: str) -> list[int]:
        if not text:
            return []
        return self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)[
            "input_ids"
        ]

    def first_human(self, value: str) -> list[int]:
        for marker in _MARKERS:  # placed below, around their placeholders only
            value = value.replace(marker, "")
        ids: list[int] = []
        for piece in _PLACEHOLDERS.split(value):
            if piece in _BLOCKS:
                start, end = _BLOCKS[piece]
                ids += [self.special[start], self.special[piece], self.special[end]]
            else:
                ids += self.text(piece)
        return ids


def encode_chat(
    conversations: Conversation,
    tokenizer: Any,
    system: str | None = DEFAULT_SYSTEM_PROMPT,
    *,
    add_generation_prompt: bool = False,
    compat: str = "project",
) -> Tokenized:
    """Ids and labels of a conversation: ending with a gpt turn for training, or with a human
    turn plus the assistant header for generation (`add_generation_prompt`). `compat`
    "humanomni" applies the released model's rules (`model.data.release_chat`)."""
    _check_turns(conversations, "human" if add_generation_prompt else "gpt")
    if IMAGE_TOKEN in conversations[0]["value"]:
        raise SampleError("image_unsupported", "<image> samples are not supported")
    for i, turn in enumerate(conversations[1:], 1):
        if any(tag in turn["value"] for tag in PLACEHOLDERS):
            raise SampleError("misplaced_media_tag", f"turn {i}: media tags belong in turn 0")
    return _ENCODERS[compat](list(conversations), tokenizer, system, add_generation_prompt)


def _encode_release(conversations, tokenizer, system, add_generation_prompt) -> Tokenized:
    ids = dict(zip(PLACEHOLDERS, tokenizer.convert_tokens_to_ids(list(PLACEHOLDERS)), strict=True))
    out = encode_release(
        conversations, tokenizer, system, ids, add_generation_prompt=add_generation_prompt
    )
    return Tokenized(*out)


def _encode_project(conversations, tokenizer, system, add_generation_prompt) -> Tokenized:
    enc = _Encoder(tokenizer)
    start, end = enc.special[IM_START], enc.special[IM_END]
    ids: list[int] = []
    labels: list[int] = []

    def add(tokens: list[int], supervised: bool) -> None:
        ids.extend(tokens)
        labels.extend(tokens if supervised else [IGNORE_INDEX] * len(tokens))

    newline = enc.text("\n")
    if system is not None:
        add([start, *enc.text("system\n" + system), end, *newline], False)
    for i, turn in enumerate(conversations):
        if turn["from"] == "human":
            body = enc.first_human(turn["value"]) if i == 0 else enc.text(turn["value"])
            add([start, *enc.text("user\n"), *body, end, *newline], False)
        else:
            add([start, *enc.text("assistant\n")], False)
            add([*enc.text(turn["value"]), end], True)
            add(newline, False)
    if add_generation_prompt:
        add([start, *enc.text("assistant\n")], False)
    return Tokenized(ids, labels)


_ENCODERS = {"project": _encode_project, "humanomni": _encode_release}


def tokenize_conversation(
    conversations: Conversation,
    tokenizer: Any,
    system: str | None = DEFAULT_SYSTEM_PROMPT,
    max_text_tokens: int = 2048,
    compat: str = "project",
) -> Tokenized:
    """Training ids and labels, cut to `max_text_tokens`. A cut that would lose a placeholder
    (its features would have nowhere to go) or every supervised token raises "too_long"."""
    out = encode_chat(conversations, tokenizer, system, compat=compat)
    if len(out.input_ids) <= max_text_tokens:
        return out
    placeholders = set(tokenizer.convert_tokens_to_ids(list(PLACEHOLDERS)))
    cut_ids, cut_labels = out.input_ids[:max_text_tokens], out.labels[:max_text_tokens]
    if any(t in placeholders for t in out.input_ids[max_text_tokens:]):
        raise SampleError(
            "too_long", f"{len(out.input_ids)} tokens: a media placeholder is past the limit"
        )
    if all(label == IGNORE_INDEX for label in cut_labels):
        raise SampleError(
            "too_long", f"{len(out.input_ids)} tokens: no supervised token within the limit"
        )
    return Tokenized(cut_ids, cut_labels)


def _first_human(conversations: Conversation | str) -> str:
    if isinstance(conversations, str):
        return conversations
    for turn in conversations:
        if turn.get("from") == "human":
            return str(turn.get("value", ""))
    return ""


def gate_text(conversations: Conversation | str) -> str:
    """The instruction the gate reads: the first human turn (or a raw inference instruction)
    without placeholders or markers, whitespace collapsed. The released code fed the gate tag
    remnants in training and raw text at inference; both go through this one function here."""
    text = _first_human(conversations)
    for token in SPECIAL_TOKENS:
        text = text.replace(token, " ")
    return " ".join(text.split())


def drop_audio(conversations: Conversation) -> list[dict[str, Any]]:
    """A copy without the `<audio>` tag (and its newline): the audio-ablated sample."""
    out = [dict(turn) for turn in conversations]
    for turn in out:
        if turn.get("from") == "human" and isinstance(turn.get("value"), str):
            value = turn["value"].replace(AUDIO_TOKEN + "\n", "").replace(AUDIO_TOKEN, "")
            turn["value"] = value.replace(AUDIO_START, "").replace(AUDIO_END, "")
    return out
