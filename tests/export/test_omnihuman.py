"""OmniHuman-1 export logic: which conditions a clip can train, its reference frame, the
stage mixtures and the record check (the export of a real run: tests/test_model_stages.py)."""

from __future__ import annotations

import pytest

from curation.export.config import OmniHumanConfig
from curation.export.omnihuman import (
    check_record,
    conditions,
    record,
    reference_frame,
    stage_mixtures,
)

CFG = OmniHumanConfig()


def clip(**signals):
    base = {"clip_id": "c", "clip_path": "/m/c.mp4", "start_s": 1.0, "end_s": 5.0,
            "consensus": "A woman talks.", "speech_s": 3.0, "lip_sync": 0.8,
            "lip_sync_offset_s": 0.04, "pose_visible": 0.7, "framing": "half_body", "boxes": []}  # fmt: skip
    return {**base, **signals}


def test_conditions_follow_the_signals_and_thresholds():
    assert conditions(clip(), CFG) == ["text", "audio", "pose"]
    assert conditions(clip(lip_sync=0.3), CFG) == ["text", "pose"]  # a dubbed voice: no audio
    assert conditions(clip(lip_sync_offset_s=0.6), CFG) == ["text", "pose"]  # out of step
    assert conditions(clip(speech_s=0.4), CFG) == ["text", "pose"]  # too little speech
    assert conditions(clip(lip_sync=None), CFG) == ["text", "pose"]  # no face or no speech
    assert conditions(clip(pose_visible=0.2), CFG) == ["text", "audio"]
    assert conditions(clip(consensus=None, brief_caption=None), CFG) == ["audio", "pose"]
    assert conditions(clip(consensus=None, brief_caption="Two men."), CFG)[0] == "text"
    strict = OmniHumanConfig(min_lip_sync=0.9, min_pose_visible=0.8)
    assert conditions(clip(), strict) == ["text"]


def box(frame, cls, x1, y1, x2, y2, score=0.9):
    return {"frame": frame, "t_s": frame * 0.5, "cls": cls, "nx1": x1, "ny1": y1, "nx2": x2,
            "ny2": y2, "score": score}  # fmt: skip


def test_the_reference_frame_is_the_largest_confident_face_else_person():
    boxes = [box(0, "face", 0.4, 0.1, 0.5, 0.2), box(2, "face", 0.3, 0.1, 0.6, 0.4),
             box(3, "face", 0.3, 0.1, 0.7, 0.5, score=0.1), box(1, "person", 0, 0, 1, 1)]  # fmt: skip
    ref = reference_frame(clip(boxes=boxes))
    assert ref == {"frame": 2, "t_s": 1.0, "by": "face", "box": [0.3, 0.1, 0.6, 0.4]}
    assert reference_frame(clip(boxes=[box(1, "person", 0, 0, 0.5, 1)]))["by"] == "person"
    assert reference_frame(clip()) is None


def test_stage_mixtures_follow_the_two_rules():
    pools = {"text": 100, "audio": 10, "pose": 60, "pose+audio": 5}
    s1, s2, s3 = stage_mixtures(pools, CFG)
    assert [t["task"] for t in s1["tasks"]] == ["text"] and s1["tasks"][0]["share"] == 1.0
    assert {t["task"]: t["share"] for t in s2["tasks"]} == {"audio": 0.5, "text": 0.5}
    assert {t["task"]: t["share"] for t in s3["tasks"]} == {
        "pose": 0.5,
        "audio": 0.25,
        "text": 0.25,
    }
    for stage in (s1, s2, s3):  # every stage's samples are all accounted for
        assert sum(t["share"] for t in stage["tasks"]) == pytest.approx(1.0)
    # Rule 1: the weaker task's pool is every clip with a caption, stronger clips included.
    assert s2["tasks"][1]["clips"] == 100 and s3["tasks"][0]["with_audio"] == 5
    other = stage_mixtures(pools, OmniHumanConfig(weaker_share=0.2, pose_share=0.3))
    assert {t["task"]: t["share"] for t in other[2]["tasks"]} == {
        "pose": 0.3,
        "audio": 0.56,
        "text": 0.14,
    }


def test_records_pass_the_check_and_bad_ones_are_named():
    item = record(clip(boxes=[box(1, "face", 0.3, 0.1, 0.6, 0.4)]), CFG)
    assert check_record(item) == [] and item["duration_s"] == 4.0
    assert check_record({**item, "conditions": ["pose", "text"]}) == [
        "conditions must be in order, weakest first"
    ]
    assert "framing must be" in check_record({**item, "framing": "wide"})[0]
    assert check_record({**item, "video": ""}) == ["needs a video path"]
    assert check_record({**item, "lip_sync": None}) == ["an audio clip needs its lip_sync"]
