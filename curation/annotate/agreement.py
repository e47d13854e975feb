"""How far people agree with each other, and how far the pipeline agrees with people: the first
measured accuracy of the curation's automatic labels.

- emotion: Krippendorff's alpha (nominal) over the clips two annotators labelled; the pipeline's
  accuracy against every human label;
- speech: WER between two annotators' transcripts of the same clip; the pipeline's transcript
  WER against the human ones; how often people confirm the speaker the pairs name.
Transcripts are compared lower-cased without punctuation.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from itertools import permutations
from typing import Any

from curation.annotate.tasks import SPEAKS

_WORDS = re.compile(r"[a-z0-9']+")


def _norm(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))


def krippendorff_alpha(units: list[list[str]]) -> float | None:
    """Nominal alpha over units (the values each unit got); units with one value are left out.
    None when there is nothing to compare or no variation at all."""
    pairs: Counter[tuple[str, str]] = Counter()
    for values in units:
        if len(values) < 2:
            continue
        for a, b in permutations(values, 2):
            pairs[(a, b)] += 1 / (len(values) - 1)
    totals: Counter[str] = Counter()
    for (a, _), weight in pairs.items():
        totals[a] += weight
    n = sum(totals.values())
    expected = sum(totals[a] * totals[b] for a in totals for b in totals if a != b)
    if n < 2 or expected == 0:
        return None
    observed = sum(w for (a, b), w in pairs.items() if a != b)
    return 1 - (n - 1) * observed / expected


def _wer(references: list[str], hypotheses: list[str]) -> float | None:
    import jiwer

    kept = [
        (r, h) for r, h in zip(map(_norm, references), map(_norm, hypotheses), strict=True) if r
    ]
    if not kept:
        return None
    return float(jiwer.wer([r for r, _ in kept], [h for _, h in kept]))


def agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures from pulled annotation rows (curation/annotate/pull.py)."""
    labelled = [r for r in rows if not r["skipped"]]
    by_clip: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in labelled:
        by_clip[(r["task"], r["clip_id"])].append(r)
    emotion = [r for r in labelled if r["task"] == "emotion" and r["emotion"]]
    judged = [r for r in emotion if r["pipeline_emotion"]]
    speech = [r for r in labelled if r["task"] == "speech"]
    heard = [r for r in speech if r["transcript"] and r["speaks"] == SPEAKS[0]]
    twice = [g for (task, _), g in by_clip.items() if task == "speech" and len(g) >= 2]
    pairs = [
        (g[0]["transcript"], g[1]["transcript"])
        for g in twice
        if g[0]["transcript"] and g[1]["transcript"]
    ]
    return {
        "annotations": len(rows),
        "skipped": len(rows) - len(labelled),
        "emotion_alpha": krippendorff_alpha(
            [[r["emotion"] for r in g if r["emotion"]] for (t, _), g in by_clip.items() if t == "emotion"]
        ),
        "emotion_overlapped_clips": sum(1 for (t, _), g in by_clip.items() if t == "emotion" and len(g) >= 2),
        "pipeline_emotion_accuracy": (
            sum(r["emotion"] == r["pipeline_emotion"] for r in judged) / len(judged) if judged else None
        ),
        "pipeline_emotion_judged": len(judged),
        "annotator_transcript_wer": _wer([a for a, _ in pairs], [b for _, b in pairs]),
        "pipeline_transcript_wer": _wer(
            [r["transcript"] for r in heard], [r["pipeline_transcript"] or "" for r in heard]
        ),
        "speaker_confirmed": sum(r["speaks"] == SPEAKS[0] for r in speech) / len(speech) if speech else None,
        "accepted_predictions": sum(bool(r["accepted_prediction"]) for r in labelled) / len(labelled) if labelled else None,
    }  # fmt: skip
