"""Instruction pairs for one branch from a clip's structured fields (pure functions).

Eligibility follows the paper: face pairs only for clips whose fields describe a face; body
pairs only when appearance, clothing, action or pose is described; interaction pairs for
every clip, plus the detailed caption itself as a description instruction. Every non-empty
field gets one question from its pool of paraphrases (picked by a hash of clip and field, so
runs are reproducible); a field that is empty gets none. The closed-set emotion question
shuffles its options, and the correct letter is assigned round-robin over the eligible clips
so the answer letters come out balanced. Questions are unique within a clip.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass

from curation.instructions.fields import EMOTIONS, FIELDS, has_any
from curation.instructions.templates import CAPTION_QUESTIONS, EMOTION_CHOICE, LETTERS, QUESTIONS

# The model's three visual branches, and speaker-specific speech (curation/instructions/
# speech.py), which the joint audio-visual stage trains on.
BRANCHES = ("face", "body", "interaction", "speech")
BODY_KEYS = ("appearance", "clothing", "action", "pose")

Fields = dict[str, dict[str, str]]


@dataclass
class Pair:
    question: str
    answer: str
    kind: str  # "open" (template), "closed" (options), "caption", "llm"
    field: str | None  # the field it asks about, e.g. "face.expression"
    source: str  # template id, or the model that wrote it
    prompt_hash: str | None = None

    def row(self) -> dict:
        return asdict(self)


def stable(*parts: str) -> int:
    return zlib.crc32("\x1f".join(parts).encode())


def eligible(branch: str, fields: Fields | None) -> bool:
    if branch == "face":
        return has_any(fields, "face")
    if branch == "body":
        return has_any(fields, "body", BODY_KEYS)
    return (
        fields is not None
    )  # interaction, speech: every clip with fields (speech: signals decide)


def sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def emotion_choice(clip_id: str, emotion: str, position: int) -> Pair:
    """The closed-set emotion question; the true answer sits at `position` (0-3)."""
    others = sorted((e for e in EMOTIONS if e != emotion), key=lambda e: stable(clip_id, e))
    options = others[: len(LETTERS) - 1]
    options.insert(position % len(LETTERS), emotion)
    listed = "\n".join(
        f"({letter}) {option}" for letter, option in zip(LETTERS, options, strict=True)
    )
    letter = LETTERS[position % len(LETTERS)]
    return Pair(EMOTION_CHOICE.format(options=listed), f"({letter}) {emotion}", "closed",
                "face.emotion", "face.emotion.choice")  # fmt: skip


def template_pairs(
    branch: str, clip_id: str, fields: Fields, consensus: str | None, closed_position: int = 0
) -> list[Pair]:
    """The template pairs of one eligible clip for `branch`."""
    pairs = []
    for key in FIELDS[branch]:
        value = fields[branch].get(key) or ""
        if not value:
            continue  # nothing said, nothing asked
        pool = QUESTIONS[branch][key]
        k = stable(clip_id, branch, key) % len(pool)
        answer = f"The person looks {value}." if key == "emotion" else sentence(value)
        pairs.append(Pair(pool[k], answer, "open", f"{branch}.{key}", f"{branch}.{key}.{k}"))
    if branch == "face" and fields["face"].get("emotion"):
        pairs.append(emotion_choice(clip_id, fields["face"]["emotion"], closed_position))
    if branch == "interaction" and consensus:
        k = stable(clip_id, "caption") % len(CAPTION_QUESTIONS)
        pairs.append(Pair(CAPTION_QUESTIONS[k], consensus, "caption", None, f"caption.{k}"))
    return pairs


def unique(pairs: list[Pair]) -> list[Pair]:
    """Drop repeated questions (case and spacing ignored), keeping the first."""
    seen: set[str] = set()
    out = []
    for pair in pairs:
        key = " ".join(pair.question.lower().split())
        if key not in seen:
            seen.add(key)
            out.append(pair)
    return out


def facts(branch: str, fields: Fields) -> str:
    """The branch's non-empty fields as lines, for the LLM that writes open questions."""
    return "\n".join(f"- {key}: {value}" for key, value in fields[branch].items() if value)
