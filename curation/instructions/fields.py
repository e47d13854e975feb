"""The structured fields an LLM extracts from a clip's consensus caption, and their JSON schema.

Three groups, one per branch of the model: face, body, interaction. Every field is a string;
an empty string means the caption does not describe it (nothing is invented). `emotion` is a
closed set, so that closed-set questions can be asked about it. The schema is what the
backends constrain decoding with (vLLM structured outputs, OpenAI `response_format`,
xgrammar for local models); `parse_fields` checks any output against it all the same.
"""

from __future__ import annotations

import json
import re
from typing import Any

from curation.core.fields import EMOTIONS, FIELDS, STRUCT  # noqa: F401  (public here)


class FieldsError(ValueError):
    """Model output that is not a valid set of structured fields."""


def json_schema(max_chars: int = 300) -> dict[str, Any]:
    """The schema of the fields; strings exclude quotes, backslashes and control characters
    so that every constrained output is also plain, printable JSON."""
    text = {"type": "string", "pattern": f'^[^"\\\\\\u0000-\\u001f]{{0,{max_chars}}}$'}

    def group(keys: dict[str, str]) -> dict[str, Any]:
        props = {
            k: ({"type": "string", "enum": ["", *EMOTIONS]} if k == "emotion" else text)
            for k in keys
        }
        return {"type": "object", "properties": props, "required": list(keys),
                "additionalProperties": False}  # fmt: skip

    return {
        "type": "object",
        "properties": {g: group(keys) for g, keys in FIELDS.items()},
        "required": list(FIELDS),
        "additionalProperties": False,
    }


def describe_fields() -> str:
    """The field list for a prompt."""
    lines = []
    for group, keys in FIELDS.items():
        for key, what in keys.items():
            lines.append(f"- {group}.{key}: {what}")
    return "\n".join(lines) + f"\nEmotion words: {', '.join(EMOTIONS)}."


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def parse_fields(text: str) -> dict[str, dict[str, str]]:
    """The fields in a model's answer, validated; raises FieldsError with the reason."""
    try:
        data = json.loads(_FENCE.sub("", text.strip()))
    except json.JSONDecodeError as exc:
        raise FieldsError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or set(data) != set(FIELDS):
        raise FieldsError(f"top-level keys must be {sorted(FIELDS)}")
    out: dict[str, dict[str, str]] = {}
    for group, keys in FIELDS.items():
        values = data[group]
        if not isinstance(values, dict) or set(values) != set(keys):
            raise FieldsError(f"{group}: keys must be {sorted(keys)}")
        if not all(isinstance(v, str) for v in values.values()):
            raise FieldsError(f"{group}: every value must be a string")
        out[group] = {k: " ".join(values[k].split()) for k in keys}
    emotion = out["face"]["emotion"].lower()
    if emotion and emotion not in EMOTIONS:
        raise FieldsError(f"face.emotion {emotion!r} is not one of {EMOTIONS}")
    out["face"]["emotion"] = emotion
    return out


def has_any(
    fields: dict[str, dict[str, str]] | None, group: str, keys: tuple[str, ...] = ()
) -> bool:
    """Whether the group describes anything (among `keys`, if given)."""
    values = (fields or {}).get(group) or {}
    return any(values.get(k) for k in (keys or tuple(FIELDS[group])))
