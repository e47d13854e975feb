"""Open questions written by an LLM, grounded only on one branch's structured fields.

The LLM sees the branch's non-empty fields (never the caption or the video) and returns
`n` question/answer pairs under a JSON schema, so the output parses; anything that still does
not is retried, then counted as a failure for that clip (its template pairs stand). With an
embedder, an answer whose best cosine similarity with the facts is below `grounding` is
dropped and counted: the LLM may rephrase the facts, not add to them.
"""

from __future__ import annotations

import json
from typing import Any

from curation.backends import Backend, BackendConfig, Prompt, make_backend
from curation.backends.base import prompt_hash
from curation.embed import CaptionEmbedder
from curation.instructions.generate import Fields, Pair, facts

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


class QuestionWriter:
    def __init__(
        self, backend: BackendConfig, prompt: str, n: int, attempts: int, max_chars: int,
        embedder: CaptionEmbedder | None = None, grounding: float = 0.0,
    ):  # fmt: skip
        self.config, self.prompt, self.n, self.attempts = backend, prompt, n, attempts
        self.schema = pairs_schema(n, max_chars)
        self.key = prompt_hash(prompt, str(n), str(max_chars))
        self.embedder, self.grounding = embedder, grounding
        self._backend: Backend | None = None
        self.ungrounded = 0  # answers dropped by the grounding check

    def grounded(self, pairs: list[Pair], branch: str, fields: Fields) -> list[Pair]:
        if self.embedder is None or self.grounding <= 0 or not pairs:
            return pairs
        lines = [value for value in fields[branch].values() if value]
        if not lines:
            self.ungrounded += len(pairs)
            return []
        support = self.embedder.embed([p.answer for p in pairs]) @ self.embedder.embed(lines).T
        keep = [p for p, s in zip(pairs, support.max(axis=1), strict=True) if s >= self.grounding]
        self.ungrounded += len(pairs) - len(keep)
        return keep

    def ask(
        self, branch: str, clips: list[tuple[str, Fields]]
    ) -> tuple[dict[str, list[Pair]], int]:
        """LLM pairs per clip id, and how many clips got none (after `attempts` tries)."""
        if self._backend is None:
            self._backend = make_backend(self.config)
            self._backend.setup()
        prompts = {
            clip_id: Prompt(self.prompt.format(n=self.n, about=ABOUT[branch],
                                               facts=facts(branch, fields)),
                            json_schema=self.schema, key=f"{clip_id}:{branch}")
            for clip_id, fields in clips
            if facts(branch, fields)  # no facts, nothing to ask about
        }  # fmt: skip
        found: dict[str, list[Pair]] = {}
        given = dict(clips)
        pending = list(prompts)
        for _ in range(self.attempts):
            if not pending:
                break
            answers = self._backend.generate([prompts[c] for c in pending])
            for clip_id, gen in zip(pending, answers, strict=True):
                try:
                    pairs = parse_pairs(gen.text, self.n) if not gen.error else None
                except (ValueError, AttributeError):
                    pairs = None
                if pairs:
                    found[clip_id] = [Pair(q, a, "llm", None, self.config.model, self.key)
                                      for q, a in pairs]  # fmt: skip
            pending = [c for c in pending if c not in found]
        grounded = {c: self.grounded(p, branch, given[c]) for c, p in found.items()}
        return grounded, len(pending)
