"""Which machine pairs a person's labels replace, and what their labels say (no server)."""

from __future__ import annotations

import pyarrow.parquet as pq

from curation.annotate.exports import human_labels, human_pairs, keep_machine_pair
from curation.annotate.pull import ANNOTATIONS
from curation.annotate.tasks import SPEAKS


def _row(clip, task, n, **labels):
    base = {name: None for name in ANNOTATIONS.names}
    return base | {"clip_id": clip, "task": task, "annotation_id": n, "skipped": False, **labels}


def test_the_majority_emotion_and_a_rejected_speaker(tmp_path):
    rows = [
        _row("a", "emotion", 1, emotion="sad"), _row("a", "emotion", 2, emotion="happy"),
        _row("a", "emotion", 3, emotion="happy"), _row("b", "emotion", 4, emotion="fear"),
        _row("b", "emotion", 5, emotion="angry"),  # a tie: the earlier annotation's word
        _row("c", "speech", 6, speaks=SPEAKS[0], transcript="hello there"),
        _row("c", "speech", 7, speaks=SPEAKS[1], transcript="hello there"),
        _row("d", "speech", 8, speaks=SPEAKS[0], transcript="good morning"),
    ]  # fmt: skip
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(rows, schema=ANNOTATIONS), tmp_path / "x.parquet")
    labels = human_labels(tmp_path)
    assert labels["a"] == {"emotion": "happy"} and labels["b"] == {"emotion": "fear"}
    assert labels["c"] == {"speaker_rejected": SPEAKS[1]}  # no pair names a doubted speaker
    assert human_pairs(labels["d"], "speech", "What did the man say?") == [
        ("transcript", "What did the man say?", "good morning")
    ]
    assert human_pairs(labels["c"], "speech", "What did the man say?") == []


def test_machine_pairs_on_what_a_person_labelled_are_dropped():
    emotion = {"field": "face.emotion", "kind": "open"}
    gaze = {"field": "face.gaze", "kind": "open"}
    llm = {"field": None, "kind": "llm"}
    speech = {"field": "transcript", "kind": "speech"}
    assert not keep_machine_pair(emotion, {"emotion": "happy"}, "face")
    assert keep_machine_pair(gaze, {"emotion": "happy"}, "face")
    # LLM-written face pairs come from the machine's fields, its emotion among them.
    assert not keep_machine_pair(llm, {"description": "A smile."}, "face")
    assert keep_machine_pair(llm, {"description": "A smile."}, "body")
    assert not keep_machine_pair(speech, {"speaker_rejected": SPEAKS[2]}, "speech")
    assert keep_machine_pair(speech, None, "speech")
