"""The structured fields' vocabulary: three groups, one per branch of the model (face, body,
interaction), each a set of string fields, and the closed set of emotion words. The `fields`
column's Arrow type (schemas.py) is built from it; curation/instructions/fields.py holds their
JSON schema and parsing.
"""

from __future__ import annotations

import pyarrow as pa

EMOTIONS = ["happy", "sad", "angry", "surprised", "fearful", "disgusted", "contemptuous", "neutral"]
# The HumanOmni release's emotion words (its evaluation lists them as options: DFEW's 7, then
# MAFW's 4 more): what people label with, and what its fine-tuning data answers.
RELEASE_EMOTIONS = ("happy", "surprise", "neutral", "angry", "disgust", "sad", "fear",
                    "contemptuous", "disappointed", "helpless", "anxious")  # fmt: skip
# The structured fields' words that the release spells otherwise.
TO_RELEASE = {"surprised": "surprise", "fearful": "fear", "disgusted": "disgust"}

FIELDS: dict[str, dict[str, str]] = {
    "face": {
        "appearance": "facial features: face shape, hair, facial hair, glasses, makeup, age",
        "expression": "the visible facial expression and how it changes",
        "emotion": "the emotion the face shows, one of the listed words, or empty",
        "gaze": "where the person looks and how the head is turned",
    },
    "body": {
        "appearance": "body attributes: gender presentation, build, age group, hair",
        "clothing": "clothes and accessories",
        "action": "what the person does",
        "pose": "body posture: standing, sitting, arm and hand positions",
    },
    "interaction": {
        "with_people": "how the person interacts with other people",
        "with_objects": "objects the person holds, uses or touches",
        "environment": "the place and scene around the person",
    },
}

STRUCT = pa.struct(
    [
        pa.field(group, pa.struct([pa.field(k, pa.string()) for k in keys]))
        for group, keys in FIELDS.items()
    ]
)
