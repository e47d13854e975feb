"""ViSpeak items from timed events, and the format check (times, spans, turns)."""

from __future__ import annotations

import json

from curation.export.vispeak import check_item, items_for


def clip(*events):
    return {"clip_id": "c", "clip_path": "/m/c.mp4", "start_s": 10.0, "end_s": 20.0,
            "events": list(events)}  # fmt: skip


def event(kind, start, end, confidence=0.9, person=0, hands=None):
    return {
        "type": kind,
        "start_s": start,
        "end_s": end,
        "confidence": confidence,
        "person": person,
        "hands": hands,
    }


def test_each_event_makes_an_item_timed_to_it():
    items = items_for(clip(event("approach", 1.0, 2.5), event("leave", 8.0, 9.4),
                           event("point", 3.0, 4.0), event("wave", 5.0, 6.0, confidence=0.2)), 0.5)  # fmt: skip
    assert [i["task"] for i in items] == [
        "visual_wake_up",
        "visual_termination",
        "visual_reference",
    ]
    wake, bye, point = items
    assert len(wake["conversations"]) == 1 and wake["conversations"][0]["from"] == "gpt"
    assert (
        wake["conversations"][0]["timespan"] == [1.0, 2.5]
        and wake["conversations"][0]["time"] == 2.5
    )
    assert [t["from"] for t in bye["conversations"]] == ["human", "gpt"]
    assert bye["conversations"][0]["time"] == 0.0 and bye["conversations"][1]["time"] == 9.4
    for item in items:
        assert check_item(item) == [] and item["duration_s"] == 10.0
    json.loads(json.dumps(items))  # plain JSON


def test_the_check_names_what_is_wrong():
    (item,) = items_for(clip(event("raise_hand", 3.0, 4.0)), 0.5)
    late = json.loads(json.dumps(item))
    late["conversations"][1]["time"] = 7.0  # beyond end + 2 s: not on time
    assert check_item(late) == ["turn 1: the reply is not on time for its event"]
    outside = json.loads(json.dumps(item))
    outside["conversations"][1]["time"] = 12.0
    assert check_item(outside) == ["turn 1: time must lie inside the clip"]
    backwards = json.loads(json.dumps(item))
    backwards["conversations"][1]["timespan"] = [4.0, 3.0]
    assert check_item(backwards) == ["turn 1: timespan must be an ordered interval in the clip"]
    twice = json.loads(json.dumps(item))
    twice["conversations"][0]["from"] = "gpt"
    assert check_item(twice) == ["turns must alternate human and gpt"]
    assert check_item({"video": "", "conversations": []}) == ["needs a video path"]


def test_the_answer_says_which_hands():
    one, both = items_for(clip(event("raise_hand", 1.0, 2.0, hands="left"),
                               event("raise_hand", 5.0, 6.0, hands="both")), 0.5)  # fmt: skip
    assert one["conversations"][1]["value"] == "You raised your hand."
    assert both["conversations"][1]["value"] == "You raised both hands."
