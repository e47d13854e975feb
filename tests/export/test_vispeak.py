"""ViSpeak items from timed events, timed against the frames ViSpeak's loader samples, and the
check of what its loader and ViSpeak-Bench need (the properties a run of ViSpeak's own
`LazySupervisedDataset` on the export showed: docs/exports.md)."""

from __future__ import annotations

import json

import pytest

from curation.export.config import VispeakConfig
from curation.export.vispeak import (
    ROUTES,
    check_item,
    items_for,
    positive_frames,
    sample_times,
)

CFG = VispeakConfig()


def clip(*events, seconds=10.0, fps=25.0):
    return {"clip_id": "c", "clip_path": "/m/c.mp4", "start_s": 10.0, "end_s": 10.0 + seconds,
            "fps": fps, "start_frame": 250, "end_frame": 250 + round(seconds * fps),
            "events": list(events)}  # fmt: skip


def event(kind, start, end, confidence=0.9, person=0, hands=None):
    return {"type": kind, "start_s": start, "end_s": end, "confidence": confidence,
            "person": person, "hands": hands}  # fmt: skip


def placed_after(times, t):
    """The sampled frame a triggered reply at t follows in ViSpeak's loader (the last one at or
    before t), or None when it would come before every frame."""
    before = [f for f in times if f <= t]
    return before[-1] if before else None


def test_frames_are_sampled_as_vispeaks_loader_does():
    assert sample_times(250, 25.0, CFG) == [float(s) for s in range(10)]  # 1 fps from frame 0
    short = sample_times(100, 25.0, CFG)  # 4 s: fewer than 8 at 1 fps, so 8 spread evenly
    assert len(short) == 8 and short[0] == 0 and short[-1] == 99 / 25
    long = sample_times(25 * 100, 25.0, CFG)  # 100 s: at most 64, spread over the 1-fps ones
    assert len(long) == 64 and long[0] == 0 and long[-1] == 99.0
    assert sample_times(300, 29.97, CFG)[1] == 30 / 29.97


@pytest.mark.parametrize("seconds", [3.0, 4.4, 10.0, 30.0])
def test_every_triggered_reply_follows_a_positive_frame_inside_its_span(seconds):
    events = [event("approach", 0.1, 0.3), event("raise_hand", 1.3, 1.5, hands="both"),
              event("wave", seconds - 0.6, seconds - 0.1), event("leave", seconds - 1.0, seconds)]  # fmt: skip
    c = clip(*events, seconds=seconds)
    items = items_for(c, CFG, "c.mp4")
    times = sample_times(c["end_frame"] - c["start_frame"], c["fps"], CFG)
    assert items
    for item in items:
        assert check_item(item) == [], item
        for turn in item["conversations"]:
            if "timespan" not in turn or turn["from"] != "gpt":
                continue
            start, end = turn["timespan"]
            assert end - start >= CFG.min_span_s - 1e-9 or (start == 0 and end >= seconds - 1e-3)
            positive = positive_frames(times, turn["timespan"])
            assert positive, turn  # the informative head gets at least one positive frame
            # The reply follows the first positive frame shown once the event has begun.
            reacting = [t for t in positive if t >= item["event_s"][0]]
            assert placed_after(times, turn["time"]) == reacting[0]
            assert max(0.0, start) <= turn["time"] <= end + 2.0  # ViSpeak-Bench's rule


def test_each_subtask_has_its_layout():
    items = items_for(clip(event("approach", 1.0, 2.5), event("leave", 8.0, 9.4),
                           event("point", 3.0, 4.0, hands="left"), event("stop", 5.0, 6.0),
                           event("raise_hand", 4.0, 5.0), event("wave", 5.0, 6.0, confidence=0.2)),
                      CFG, "c.mp4")  # fmt: skip
    by = {i["task"]: i for i in items}
    assert sorted(by) == sorted(ROUTES) and len(items) == 5
    assert all(i["proactive"] is (i["task"] != "visual_reference") for i in items)
    assert all(i["use_audio"] is False and i["video"] == "c.mp4" for i in items)
    wake = by["visual_wake_up"]["conversations"]
    assert [t["from"] for t in wake] == ["gpt"] and wake[0]["timespan"] == [1.0, 3.0]
    for task in ("gesture_understanding", "visual_interruption", "visual_termination"):
        turns = by[task]["conversations"]
        assert [t["from"] for t in turns] == ["human", "gpt", "gpt"], task
        assert "timespan" not in turns[1] and "timespan" in turns[2]
        assert turns[1]["time"] == pytest.approx(turns[0]["time"] + 0.1)
    bye = by["visual_termination"]["conversations"]
    assert bye[0]["timespan"] == [0.0, bye[0]["time"]] and bye[0]["time"] >= 1.0
    assert by["gesture_understanding"]["conversations"][0]["time"] == 0.0
    ref = by["visual_reference"]["conversations"]
    assert [t["from"] for t in ref] == ["human", "gpt"] and "timespan" not in ref[1]
    assert ref[0]["time"] >= 4.0 and "left hand" in ref[1]["value"]
    json.loads(json.dumps(items))  # plain JSON


def test_an_event_too_early_for_the_users_turn_makes_no_item():
    assert items_for(clip(event("stop", 0.5, 1.0)), CFG, "c.mp4") == []
    assert len(items_for(clip(event("stop", 3.5, 4.0)), CFG, "c.mp4")) == 1


def test_the_interrupted_answer_is_the_clips_own_description():
    c = {**clip(event("stop", 5.0, 6.0)), "consensus": "A man in a grey coat stands by a desk."}
    (item,) = items_for(c, CFG, "c.mp4")
    assert item["conversations"][1]["value"] == c["consensus"]


def test_the_check_names_what_is_wrong():
    (item,) = items_for(clip(event("raise_hand", 3.0, 4.0)), CFG, "c.mp4")

    def broken(change):
        copy = json.loads(json.dumps(item))
        change(copy)
        return check_item(copy)

    def late(i):
        i["conversations"][2]["time"] = 7.5  # the span is [3, 5]: beyond end + 2 s

    def early(i):
        i["conversations"][2]["time"] = 3.5  # before the first frame of the second half (4 s)

    def first_frame(i):
        i["conversations"][2]["timespan"] = [3.1, 3.9]  # no sampled frame in [3.5, 3.9]

    assert broken(late) == ["turn 2: the reply is not on time for its event"]
    assert broken(early) == ["turn 2: the reply comes before the frame it should follow"]
    assert broken(first_frame) == ["turn 2: no sampled frame in the timespan's second half"]
    assert broken(lambda i: i.pop("proactive")) == ["needs `proactive` (a bool)"]
    assert broken(lambda i: i["conversations"].pop(0)) == [
        "turn 0: an untriggered reply must answer a user's turn"]  # fmt: skip
    assert broken(lambda i: i["conversations"][2].pop("timespan")) == [
        "turn 2: an untriggered reply must answer a user's turn",
        "a proactive item needs a triggered reply (with a timespan)"]  # fmt: skip
    assert check_item({"video": "", "conversations": []}) == ["needs a video path"]


def test_the_answer_says_which_hands():
    one, both = items_for(clip(event("raise_hand", 1.0, 2.0, hands="left"),
                               event("raise_hand", 5.0, 6.0, hands="both")), CFG, "c.mp4")  # fmt: skip
    assert one["conversations"][2]["value"] == "You raised your hand."
    assert both["conversations"][2]["value"] == "You raised both hands."


def test_any_clip_and_event_gives_a_well_formed_item_or_none():
    """Clips of any length at common rates (29.97 fps: lengths that are no whole number of
    milliseconds), events anywhere, even in the last frames: every item passes the check,
    so one event can never stop an export."""
    import random

    rng = random.Random(7)
    made = 0
    for _ in range(400):
        fps = rng.choice([23.976, 25.0, 29.97, 30.0, 60.0])
        frames = rng.randint(30, 40 * 30)
        seconds = frames / fps
        start = rng.uniform(0, seconds)
        end = min(seconds, start + rng.uniform(0.04, 3.0))
        kind = rng.choice(sorted({"approach", "wave", "raise_hand", "stop", "leave", "point"}))
        c = {**clip(event(kind, start, end)), "fps": fps, "end_frame": 250 + frames,
             "end_s": 10.0 + seconds}  # fmt: skip
        for item in items_for(c, CFG, "c.mp4"):
            made += 1
            assert check_item(item) == [], (fps, frames, kind, start, end, item)
            last = item["conversations"][-1]
            assert last["time"] >= start - 1e-9 or kind == "point"
    assert made > 300
