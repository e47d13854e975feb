"""Completed annotations read back from a Label Studio export into rows: one per annotation,
with who made it, how long it took, its labels, and whether the annotator submitted the
pipeline's prediction unchanged. The rows mirror the server: a pull rewrites the file whole,
so pulling twice adds nothing twice, and a task deleted on the server is gone from the file."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

ANNOTATIONS = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),  # emotion, face or speech
        pa.field("annotation_id", pa.int64(), nullable=False),  # Label Studio's
        pa.field("annotator", pa.int64()),  # Label Studio's user id
        pa.field("lead_time_s", pa.float64()),  # seconds the annotator spent
        pa.field("skipped", pa.bool_()),  # the annotator skipped the clip: no labels
        pa.field("emotion", pa.string()),  # one of the release's 11 words
        pa.field("description", pa.string()),  # the face and its expression
        pa.field("speaks", pa.string()),  # who speaks (tasks.SPEAKS)
        pa.field("transcript", pa.string()),  # the words as the annotator heard them
        pa.field("accepted_prediction", pa.bool_()),  # submitted the pipeline's answer unchanged
        pa.field("pipeline_emotion", pa.string()),  # the pipeline's answers, as predicted
        pa.field("pipeline_transcript", pa.string()),
        pa.field("problem", pa.string()),  # why a label was not kept (e.g. an unknown word)
        pa.field("updated_at", pa.string()),
    ]
)


def _values(result: list[dict[str, Any]]) -> dict[str, str]:
    """{control name: value} of a Label Studio result (first choice, joined text)."""
    out = {}
    for item in result or []:
        value = item.get("value") or {}
        if "choices" in value and value["choices"]:
            out[item["from_name"]] = str(value["choices"][0])
        elif "text" in value:
            text = value["text"]
            out[item["from_name"]] = (
                " ".join(text) if isinstance(text, list) else str(text)
            ).strip()
    return out


def rows_from_export(tasks: list[dict[str, Any]], known_emotions: tuple[str, ...]) -> list[dict]:
    """The rows of every submitted or skipped annotation of an exported project."""
    rows = []
    for task in tasks:
        data = task.get("data") or {}
        pipeline = data.get("pipeline") or {}
        for ann in task.get("annotations") or []:
            labels = _values(ann.get("result") or [])
            skipped = bool(ann.get("was_cancelled"))
            problem = None
            emotion = labels.get("emotion")
            if emotion is not None and emotion not in known_emotions:
                problem, emotion = f"unknown emotion {emotion!r}", None
            for name in ("description", "transcript"):
                if name in labels and not labels[name]:
                    labels[name] = None  # an empty field is no label
            rows.append({
                "clip_id": data.get("clip_id") or str(task.get("id")),
                "task": data.get("task") or "",
                "annotation_id": int(ann["id"]),
                "annotator": ann.get("completed_by") if isinstance(ann.get("completed_by"), int) else (ann.get("completed_by") or {}).get("id"),
                "lead_time_s": ann.get("lead_time"),
                "skipped": skipped,
                "emotion": None if skipped else emotion,
                "description": None if skipped else labels.get("description"),
                "speaks": None if skipped else labels.get("speaks"),
                "transcript": None if skipped else labels.get("transcript"),
                "accepted_prediction": (not skipped) and bool(pipeline) and labels == pipeline,
                "pipeline_emotion": pipeline.get("emotion"),
                "pipeline_transcript": pipeline.get("transcript"),
                "problem": problem,
                "updated_at": ann.get("updated_at"),
            })  # fmt: skip
    return sorted(rows, key=lambda r: (r["task"], r["clip_id"], r["annotation_id"]))


def to_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ANNOTATIONS)
