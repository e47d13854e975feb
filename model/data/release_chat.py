"""The released model's text rules (compat "humanomni"): what released weights were trained on.

Training, as the release's data pipeline does it:
- in every turn each media tag, taken in the order <audio>, <video>, <image>, is cut out and put
  in front followed by a newline, and the value stripped (so "<video>\\n<audio>\\nQ" becomes
  "<video>\\n<audio>\\n\\n\\nQ"); then each tag is wrapped in its markers, which are plain text;
- the turns are formatted by the tokenizer's own chat template (Qwen2.5's adds its default
  system prompt when there is no system turn);
- the text is split at the tags and each piece tokenised as it is (chat markers in it are
  parsed as the tokenizer's special tokens), the tags becoming their placeholder ids;
- every token from the end of an assistant header up to the next turn is supervised: the reply,
  its <|im_end|> and the newline after it.
Inference, as the release's `mm_infer` does it: the tags stay where they are ("<video>\\n<audio>\\n"
+ instruction), the generation prompt is the template's, markers are added around the tags.

What the release truncates blindly (placeholders included) is cut here by the project's safe
rule (`tokenize_conversation`); the gate reads the project's cleaned instruction in both modes.
"""

from __future__ import annotations

import re
from typing import Any

from model.config import (
    AUDIO_END,
    AUDIO_START,
    AUDIO_TOKEN,
    IMAGE_TOKEN,
    VIDEO_END,
    VIDEO_START,
    VIDEO_TOKEN,
)
from model.data.errors import SampleError
from model.splice import IGNORE_INDEX

ROLES = {"human": "user", "gpt": "assistant"}
# The release's order of its modal map; the tag moved last ends up first.
_TAG_ORDER = (AUDIO_TOKEN, VIDEO_TOKEN, IMAGE_TOKEN)
# The release wraps images in <im_start>/<im_end>; images are refused before this point.
_WRAPPED = {VIDEO_TOKEN: VIDEO_START + VIDEO_TOKEN + VIDEO_END}
_WRAPPED[AUDIO_TOKEN] = AUDIO_START + AUDIO_TOKEN + AUDIO_END
_TAGS = re.compile("|".join(re.escape(t) for t in (VIDEO_TOKEN, AUDIO_TOKEN, IMAGE_TOKEN)))


def release_turn(value: str) -> str:
    """A turn's value as the release prepares it for training (tags moved, then wrapped)."""
    for tag in _TAG_ORDER:
        if tag in value:
            value = (tag + "\n" + value.replace(tag, "").strip()).strip()
    return _wrap(value)


def _wrap(text: str) -> str:
    for tag, wrapped in _WRAPPED.items():
        text = text.replace(tag, wrapped)
    return text


def _template(tokenizer: Any, messages: list[dict[str, str]], generation: bool) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            'compat "humanomni" formats with the tokenizer\'s chat template, and this tokenizer '
            "has none (a release ships it in tokenizer_config.json)"
        )
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)


def _ids(tokenizer: Any, text: str, placeholders: dict[str, int]) -> list[int]:
    ids: list[int] = []
    position = 0
    for match in _TAGS.finditer(text):
        ids += tokenizer(text[position : match.start()], add_special_tokens=False)["input_ids"]
        ids.append(placeholders[match[0]])
        position = match.end()
    return ids + tokenizer(text[position:], add_special_tokens=False)["input_ids"]


def encode_release(
    conversations: list[dict[str, Any]],
    tokenizer: Any,
    system: str | None,
    placeholders: dict[str, int],
    *,
    add_generation_prompt: bool = False,
) -> tuple[list[int], list[int]]:
    """Ids and labels by the release's rules (turns already checked by the caller)."""
    head = [{"role": "system", "content": system}] if system is not None else []
    if add_generation_prompt:
        messages = head + [{"role": ROLES[t["from"]], "content": t["value"]} for t in conversations]
        ids = _ids(tokenizer, _wrap(_template(tokenizer, messages, True)), placeholders)
        return ids, [IGNORE_INDEX] * len(ids)
    messages = head + [
        {"role": ROLES[t["from"]], "content": release_turn(t["value"])} for t in conversations
    ]
    ids = _ids(tokenizer, _template(tokenizer, messages, False), placeholders)
    labels = [IGNORE_INDEX] * len(ids)
    for i in range(len(head) + 1, len(messages), 2):  # each assistant turn
        prompt = _ids(tokenizer, _template(tokenizer, messages[:i], True), placeholders)
        end = len(_ids(tokenizer, _template(tokenizer, messages[: i + 1], False), placeholders))
        if ids[: len(prompt)] != prompt:  # the release assumes it; a template may not hold to it
            raise SampleError("bad_conversation", "the chat template is not prefix-stable")
        labels[len(prompt) : end] = ids[len(prompt) : end]
    return ids, labels
