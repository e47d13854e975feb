"""The structured fields' vocabulary: three groups, one per branch of the model (face, body,
interaction), each a set of string fields, and the closed set of emotion words. The `fields`
column's Arrow type (schemas.py) is built from it; curation/instructions/fields.py holds their
JSON schema and parsing.
"""

from __future__ import annotations

import pyarrow as pa

EMOTIONS = ["happy", "sad", "angry", "surprised", "fearful", "disgusted", "contemptuous", "neutral"]

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
