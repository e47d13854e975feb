"""Speaker-specific speech pairs (HumanOmni's "what did this person say"): "What did the woman
in the red coat say?" -> the transcript.

A clip gets one when its signals show one speaker to trust: a transcript, exactly one face
in most sampled frames that show a face (boxes; a stray false detection in one frame does not
count), a mouth that moves with the speech
(`lip_sync` at least `speech_min_lip_sync`) and sound in step with the picture (the best
offset within `speech_max_offset_s`: a clip whose audio is out of step would teach the
model the wrong timing). The speaker is named from the structured fields: the person noun of
the body or face appearance ("woman", "man", "boy", ...) and the clothing ("in a red coat"),
or "the person" when the fields say neither. Answers are the transcript itself.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from curation.instructions.generate import Pair, stable

QUESTIONS = [
    "What did {speaker} say?",
    "What does {speaker} say in the video?",
    "Transcribe the words spoken by {speaker}.",
    "Repeat exactly what {speaker} says.",
]
# Longest first, so "woman" is not read as "man".
NOUNS = ("businesswoman", "businessman", "grandmother", "grandfather", "policewoman",
         "policeman", "woman", "man", "girl", "boy", "lady", "gentleman", "child", "teenager",
         "person", "athlete", "singer", "speaker", "presenter", "student", "teacher")  # fmt: skip
_NOUN = re.compile(r"\b(" + "|".join(NOUNS) + r")\b", re.IGNORECASE)
_WEARING = re.compile(r"^(?:is\s+)?(?:wearing|dressed in|in)\s+", re.IGNORECASE)


def speaker(fields: dict[str, dict[str, str]] | None) -> str:
    """'the woman in a red coat', 'the man', or 'the person'."""
    fields = fields or {}
    body, face = fields.get("body") or {}, fields.get("face") or {}
    found = _NOUN.search(body.get("appearance") or "") or _NOUN.search(face.get("appearance") or "")
    noun = found.group(1).lower() if found else "person"
    clothing = (body.get("clothing") or "").strip().rstrip(".")
    clothing = _WEARING.sub("", re.split(r"[,;]| and (?=\w+ing\b)", clothing)[0]).strip()
    if clothing and len(clothing.split()) <= 8:
        return f"the {noun} in {clothing}"
    return f"the {noun}"


def why_not(clip: dict[str, Any], min_lip_sync: float, max_offset_s: float) -> str | None:
    """Why the clip has no speaker to ask about (None: it has one)."""
    if not (clip.get("transcript") or "").strip():
        return "no_transcript"
    if clip.get("boxes") is not None:
        faces = Counter(b["frame"] for b in clip["boxes"] if b["cls"] == "face")
        if sum(n == 1 for n in faces.values()) * 2 <= len(faces):
            return "not_one_face"
    sync = clip.get("lip_sync")
    if sync is None or sync < min_lip_sync:
        return "not_lip_synced"
    if abs(clip.get("lip_sync_offset_s") or 0.0) > max_offset_s:
        return "audio_out_of_step"
    return None


def speech_pairs(clip: dict[str, Any]) -> list[Pair]:
    """The clip's speaker-specific pair (one question, picked by a hash of the clip)."""
    k = stable(clip["clip_id"], "speech") % len(QUESTIONS)
    question = QUESTIONS[k].format(speaker=speaker(clip.get("fields")))
    return [Pair(question, clip["transcript"].strip(), "speech", "transcript", f"speech.{k}")]
