"""The metrics of HumanOmni's evaluation tables, computed from answers and labels.

- Emotion recognition (DFEW 7 classes, MAFW 11): UAR (the mean of the per-class recalls over
  the dataset's fixed class list) and WAR (accuracy). An answer that names no class of the
  list, or several, is wrong and counted in `invalid_rate`. The release computes UAR over
  whatever labels appear, so such an answer became an extra class of recall 0, lowering UAR
  by a share that depends on how many distinct wrong answers there were (`release_uar`, kept
  to show the difference).
- Multiple choice (MVBench-style): the option letter is parsed from the answer; an answer with
  no letter of the options is wrong and counted in `invalid_rate` (the release took it as B).
- Speech recognition: WER over the corpus (jiwer) after Whisper's English text normalizer.
- Captions (DFEC): CIDEr-D and ROUGE-L (pycocoevalcap's scorers) on lower-cased word and
  number tokens.
- ViSpeak: a reply at t is on time for an event over [start, end] when
  max(0, start) <= t <= end + 2 (ViSpeak-Bench's rule).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_WORD = re.compile(r"[a-z0-9]+")


def parse_label(
    answer: str, classes: Sequence[str], aliases: dict[str, str] | None = None
) -> str | None:
    """The class an answer names: the answer itself, or the one class whose word(s) it
    contains (case-insensitive, whole words; `aliases` maps other words to classes, e.g.
    "surprised" to "surprise"); None when it names none or several. A negation is not read
    ("not happy" names happy)."""
    text = answer.strip().lower().strip(string.punctuation + " ")
    lowered = {c.lower(): c for c in classes} | {k.lower(): v for k, v in (aliases or {}).items()}
    if text in lowered:
        return lowered[text]
    words = f" {' '.join(_WORD.findall(text))} "
    named = {c for low, c in lowered.items() if f" {' '.join(_WORD.findall(low))} " in words}
    return named.pop() if len(named) == 1 else None


def classification(
    answers: Sequence[str],
    targets: Sequence[str],
    classes: Sequence[str],
    aliases: dict[str, str] | None = None,
) -> dict[str, float]:
    """UAR, WAR and the share of answers naming no class, over the fixed class list."""
    unknown = sorted(set(targets) - set(classes))
    if unknown:
        raise ValueError(f"labels outside the class list {list(classes)}: {unknown}")
    if len(answers) != len(targets) or not targets:
        raise ValueError("need one answer per label, and at least one")
    predicted = [parse_label(a, classes, aliases) for a in answers]
    support = Counter(targets)
    hits = Counter(t for t, p in zip(targets, predicted, strict=True) if p == t)
    recalls = [hits[c] / support[c] for c in classes if support[c]]
    return {
        "uar": sum(recalls) / len(recalls),
        "war": sum(hits.values()) / len(targets),
        "invalid_rate": sum(p is None for p in predicted) / len(targets),
        "samples": len(targets),
    }


def release_uar(answers: Sequence[str], targets: Sequence[str]) -> float:
    """UAR as the release computes it: a macro recall over every label that appears in the
    targets or the (raw) answers, so each distinct out-of-list answer is a class of recall 0."""
    labels = sorted(set(targets) | {a.strip() for a in answers})
    support = Counter(targets)
    hits = Counter(t for t, a in zip(targets, answers, strict=True) if a.strip() == t)
    return sum(hits[c] / support[c] if support[c] else 0.0 for c in labels) / len(labels)


_CHOICE = [
    re.compile(r"^\s*\(?([A-Z])(?:[.:)]|\s*$)"),  # "B", "(B)", "B.", "B) waves" (not "A man")
    re.compile(r"\(([A-Za-z])\)"),  # "(c)" anywhere: "I think (C)"
    re.compile(r"(?i:\banswer\b)\s*(?i:is)?\s*[:\-]?\s*([A-Z])(?![A-Za-z])"),  # not "answer is a"
    re.compile(r"(?i:\boption\b)\s*([A-Z])(?![A-Za-z])"),
]


def parse_choice(answer: str, options: int) -> str | None:
    """The option letter an answer gives (A.. for `options` options), or None."""
    letters = string.ascii_uppercase[:options]
    for pattern in _CHOICE:
        found = pattern.search(answer)
        if found and found.group(1).upper() in letters:
            return found.group(1).upper()
    return None


def multiple_choice(
    answers: Sequence[str], targets: Sequence[str], options: int
) -> dict[str, float]:
    """Accuracy and the share of answers with no option letter (those count as wrong)."""
    if len(answers) != len(targets) or not targets:
        raise ValueError("need one answer per label, and at least one")
    picked = [parse_choice(a, options) for a in answers]
    return {
        "accuracy": sum(p == t for p, t in zip(picked, targets, strict=True)) / len(targets),
        "invalid_rate": sum(p is None for p in picked) / len(targets),
        "samples": len(targets),
    }


def wer(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus word error rate after Whisper's English normalizer (case, punctuation, numbers,
    contractions, titles). British spellings are not mapped to American ones: Whisper's
    spelling table ships with its tokenizer files, which are not here."""
    import jiwer
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    normalize = EnglishTextNormalizer({})
    refs = [normalize(r) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    kept = [(r, h) for r, h in zip(refs, hyps, strict=True) if r.strip()]
    if not kept:
        raise ValueError("no reference with words")
    return {"wer": jiwer.wer([r for r, _ in kept], [h for _, h in kept]), "samples": len(kept)}


def _tokens(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def caption_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """CIDEr-D and ROUGE-L of each prediction against its reference captions, over the set.
    CIDEr's word weights come from the references scored: meaningful over a test set (DFEC's
    hundreds of captions), not over a handful (one perfect caption alone scores 0)."""
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {i: [_tokens(r) for r in refs] for i, refs in enumerate(references)}
    res = {i: [_tokens(p)] for i, p in enumerate(predictions)}
    cider, _ = Cider().compute_score(gts, res)
    rouge, _ = Rouge().compute_score(gts, res)
    return {"cider": float(cider), "rouge_l": float(rouge), "samples": len(predictions)}


def on_time(t: float, start: float, end: float) -> bool:
    """ViSpeak-Bench's timing rule for a reply at t to an event over [start, end]."""
    return max(0.0, start) <= t <= end + 2.0
