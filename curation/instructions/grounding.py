"""Keep only fields the caption supports: the check that nothing was invented.

The structure prompt tells the LLM to leave undescribed fields empty; this checks it without
trusting it. Every non-empty field value is embedded with the dedup/consensus embedder and
compared with the caption's sentences and clauses; a value whose best cosine similarity is
below `threshold` is cleared, and its name recorded. `emotion` is exempt: it is a word chosen
from a closed set, inferred from the expression rather than quoted. With MiniLM, phrases the
caption states score 0.41-0.81 against it and phrases it does not 0.03-0.21 (see the tests);
the default threshold is 0.3.
"""

from __future__ import annotations

import copy

import numpy as np

from curation.consensus import split_units
from curation.embed import CaptionEmbedder
from curation.instructions.generate import Fields

EXEMPT = {("face", "emotion")}


def ground_fields(
    fields: Fields, caption: str, embedder: CaptionEmbedder, threshold: float
) -> tuple[Fields, list[str]]:
    """The fields with unsupported values cleared, and the names of those cleared."""
    named = [
        (group, key, value)
        for group, values in fields.items()
        for key, value in values.items()
        if value and (group, key) not in EXEMPT
    ]
    units = [*split_units(caption), caption]
    if threshold <= 0 or not named:
        return fields, []
    support = embedder.embed([v for _, _, v in named]) @ embedder.embed(units).T
    best = np.max(support, axis=1)
    out, cleared = copy.deepcopy(fields), []
    for (group, key, _), score in zip(named, best, strict=True):
        if score < threshold:
            out[group][key] = ""
            cleared.append(f"{group}.{key}")
    return out, cleared
