"""The "dual check": keep what several captioners agree on, and measure agreement without the LLM.

Captions are split into sentences, and those into clauses (one sentence may join details
that different captioners wrote), and embedded with the same
sentence-transformers model as the dedup stage. A sentence is *supported* by a candidate
caption when some sentence of that candidate has cosine similarity >= `match` with it.

- `agreement(consensus, candidates)`: for every consensus sentence, its support from the
  `min_support`-th best candidate (by default the second best: "said by at least two"); the
  score is the mean over sentences, in [0, 1]. A detail only one captioner wrote scores what
  its second-best candidate offers (usually little), so the LLM's output is checked against
  the candidates, not against its own judgement.
- `extractive_consensus(candidates)`: a consensus with no LLM, the candidate sentences that
  at least `min_support` candidates (the author included) support, near-repeats dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from curation.embed import CaptionEmbedder

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")
# Clause boundaries: one sentence may join two details that different captioners wrote.
_CLAUSE = re.compile(
    r",\s+|\s+(?:and|while|whereas|but)\s+(?=(?:a|an|the|he|she|they|it|his|her|their)\b)"
)


def split_sentences(text: str) -> list[str]:
    """Sentences of a caption; fragments of fewer than two words are dropped."""
    parts = (p.strip(" \t-*•;") for p in _SENTENCE_END.split(text or ""))
    return [p for p in parts if len(p.split()) >= 2]


def split_units(text: str) -> list[str]:
    """Sentences, and the clauses of sentences that have several: the units checked."""
    units: list[str] = []
    for sentence in split_sentences(text):
        clauses = [c.strip(" .") for c in _CLAUSE.split(sentence)]
        clauses = [c for c in clauses if len(c.split()) >= 2]
        units.extend(clauses if len(clauses) > 1 else [sentence])
    return units


@dataclass
class Agreement:
    score: float  # mean over consensus units of the min_support-th best candidate support
    sentences: int  # units (sentences or clauses) of the consensus
    supported: int  # units supported by at least min_support candidates


def _support(sentences: np.ndarray, candidates: list[np.ndarray]) -> np.ndarray:
    """support[i, c]: best cosine of sentence i with any sentence of candidate c (0 if empty)."""
    out = np.zeros((len(sentences), len(candidates)), dtype=np.float32)
    for c, vectors in enumerate(candidates):
        if len(vectors) and len(sentences):
            out[:, c] = (sentences @ vectors.T).max(axis=1)
    return out


class ConsensusScorer:
    def __init__(self, embedder: CaptionEmbedder, match: float = 0.6, min_support: int = 2):
        self.embedder = embedder
        self.match = match
        self.min_support = min_support

    def _embed(self, sentences: list[str]) -> np.ndarray:
        if not sentences:
            return np.zeros((0, 1), dtype=np.float32)
        return self.embedder.embed(sentences)

    def agreement(self, consensus: str, candidates: list[str]) -> Agreement:
        sentences = split_units(consensus)
        if not sentences or len(candidates) < self.min_support:
            return Agreement(0.0, len(sentences), 0)
        reference = [split_sentences(c) + split_units(c) for c in candidates]
        support = _support(self._embed(sentences), [self._embed(r) for r in reference])
        kth = np.sort(support, axis=1)[:, -self.min_support]  # the k-th best candidate
        return Agreement(
            score=float(np.clip(kth, 0.0, 1.0).mean()),
            sentences=len(sentences),
            supported=int((kth >= self.match).sum()),
        )

    def extractive_consensus(self, candidates: list[str]) -> str:
        split = [split_sentences(c) for c in candidates]
        vectors = [self._embed(s) for s in split]
        chosen: list[str] = []
        chosen_vectors: list[np.ndarray] = []
        for author, (sentences, own) in enumerate(zip(split, vectors, strict=True)):
            if not sentences:
                continue
            others = [v for c, v in enumerate(vectors) if c != author]
            votes = 1 + (_support(own, others) >= self.match).sum(axis=1)
            for sentence, vector, n in zip(sentences, own, votes, strict=True):
                repeat = any(float(vector @ v) >= self.match for v in chosen_vectors)
                if n >= self.min_support and not repeat:
                    chosen.append(sentence)
                    chosen_vectors.append(vector)
        return " ".join(s if s[-1] in ".!?" else s + "." for s in chosen)
