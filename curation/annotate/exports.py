"""People's labels as the paper's fine-tuning pairs (`make instructions` adds them): emotion
recognition and facial-expression description in the face branch, speaker-specific speech in
the speech branch, asked in the HumanOmni release's wording. Where a person labelled a clip, the
machine's pair about the same thing is dropped: a human label is preferred."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from curation.annotate.tasks import SPEAKS
from curation.core.fields import RELEASE_EMOTIONS

# The release's questions: its emotion evaluation prompt (with its option list) and its DFEC one.
EMOTION_QUESTION = (
    "As an emotional recognition expert, in the video, when the characters display their "
    "emotions, which predominant feeling is most clearly expressed?\n"
)
EXPRESSION_QUESTION = (
    "Please provide a detailed description of the facial appearance attributes and expression "
    "changes of the character in the video"
)
# Which machine pairs (their `field`) a person's label replaces, by label.
SUPERSEDES = {
    "emotion": "face.emotion",
    "description": "face.expression",
    "transcript": "transcript",
}
# The paper's hand-labelled set: clips with emotion, with a facial description, with speech.
PAPER = {"emotion": 50_000, "description": 5_000, "transcript": 20_000}


def human_labels(folder: Path) -> dict[str, dict[str, str]]:
    """{clip_id: {"emotion" | "description" | "transcript" | "speaker_rejected": text}} from
    pulled annotations: the emotion most annotators gave (the earliest annotation breaks a
    tie), the first description, the first transcript of an annotator who confirmed the named
    speaker; `speaker_rejected` when any annotator said someone else (or no one) speaks, and
    then no transcript: the pair's question names a speaker a person did not confirm."""
    labels: dict[str, dict[str, str]] = {}
    votes: dict[str, Counter[str]] = {}
    for path in sorted(folder.glob("*.parquet")):
        rows = sorted(pq.read_table(path).to_pylist(), key=lambda r: r["annotation_id"])
        for r in rows:
            if r["skipped"]:
                continue
            clip = labels.setdefault(r["clip_id"], {})
            if r["emotion"] in RELEASE_EMOTIONS:
                votes.setdefault(r["clip_id"], Counter())[r["emotion"]] += 1
            if r["description"] and "description" not in clip:
                clip["description"] = r["description"]
            if r["transcript"] and r["speaks"] == SPEAKS[0] and "transcript" not in clip:
                clip["transcript"] = r["transcript"]
            if r["speaks"] in SPEAKS[1:]:
                clip["speaker_rejected"] = r["speaks"]
    for clip_id, counter in votes.items():
        labels[clip_id]["emotion"] = counter.most_common(1)[0][0]  # first seen wins a tie
    for clip in labels.values():
        if "speaker_rejected" in clip:
            clip.pop("transcript", None)
    return {k: v for k, v in labels.items() if v}


def human_pairs(
    labels: dict[str, str], branch: str, speech_question: str | None
) -> list[tuple[str, str, str]]:
    """The (label, question, answer) pairs a clip's human labels give in `branch`; speech is
    asked as the machine's speech pair asks it (naming the speaker)."""
    if branch == "face":
        pairs = []
        if "emotion" in labels:
            options = " ,".join(RELEASE_EMOTIONS)
            pairs.append(("emotion", EMOTION_QUESTION + options, labels["emotion"]))
        if "description" in labels:
            pairs.append(("description", EXPRESSION_QUESTION, labels["description"]))
        return pairs
    if branch == "speech" and "transcript" in labels and speech_question:
        return [("transcript", speech_question, labels["transcript"])]
    return []


def keep_machine_pair(pair: dict[str, Any], labels: dict[str, str] | None, branch: str) -> bool:
    """False for a machine pair about what a person labelled for the same clip: the field's
    own pairs, the face branch's LLM-written pairs (written from the machine's face fields,
    emotion included) once a person described the face, and the speech pair once a person
    said the named person is not the one speaking."""
    if not labels:
        return True
    replaced = {SUPERSEDES[k] for k in labels if k in SUPERSEDES}
    if "speaker_rejected" in labels:
        replaced.add("transcript")
    if branch == "face" and pair.get("field") is None and {"emotion", "description"} & set(labels):
        return False
    return pair.get("field") not in replaced
