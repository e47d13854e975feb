"""Open questions written by an LLM, grounded only on one branch's structured fields.

The LLM sees the branch's non-empty fields (never the caption or the video) and returns
`n` question/answer pairs under a JSON schema, so the output parses; anything that still does
not is asked again by the instructions stage (stages/instructions.py), then counted as
a failure for that clip (its template pairs stand). With an embedder, an answer whose best
cosine similarity with the facts is below `grounding` is dropped and counted: the LLM may
rephrase the facts, not add to them.
"""

from __future__ import annotations

import json
from typing import Any

from curation.embed import CaptionEmbedder
from curation.instructions.generate import Pair

ABOUT = {
    "face": "the person's face: features, expression, emotion and gaze",
    "body": "the person's appearance, clothing, actions and pose",
    "interaction": "how the person interacts with people, objects and the environment",
}


def pairs_schema(n: int, max_chars: int) -> dict[str, Any]:
    text = {"type": "string", "pattern": f'^[^"\\\\\\u0000-\\u001f]{{1,{max_chars}}}$'}
    pair = {"type": "object", "properties": {"question": text, "answer": text},
            "required": ["question", "answer"], "additionalProperties": False}  # fmt: skip
    return {
        "type": "object",
        "properties": {"pairs": {"type": "array", "items": pair, "minItems": n, "maxItems": n}},
        "required": ["pairs"],
        "additionalProperties": False,
    }


def parse_pairs(text: str, n: int) -> list[tuple[str, str]]:
    """The pairs in an answer; raises ValueError when it does not match the schema."""
    data = json.loads(text)
    items = data.get("pairs") if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) != n:
        raise ValueError(f"expected {n} pairs")
    out = []
    for item in items:
        q, a = item.get("question"), item.get("answer")
        if not (isinstance(q, str) and isinstance(a, str) and q.strip() and a.strip()):
            raise ValueError("every pair needs a question and an answer")
        out.append((" ".join(q.split()), " ".join(a.split())))
    return out


def llm_pairs(text: str, n: int, model: str, key: str) -> list[Pair]:
    """The LLM's pairs as Pair rows; raises ValueError when the answer does not parse."""
    return [Pair(q, a, "llm", None, model, key) for q, a in parse_pairs(text, n)]


def grounded(
    pairs: list[Pair], lines: list[str], embedder: CaptionEmbedder | None, grounding: float
) -> list[Pair]:
    """The pairs whose answer is close enough to one of the facts (all when not checked)."""
    if embedder is None or grounding <= 0 or not pairs:
        return pairs
    if not lines:
        return []
    support = embedder.embed([p.answer for p in pairs]) @ embedder.embed(lines).T
    return [p for p, s in zip(pairs, support.max(axis=1), strict=True) if s >= grounding]
