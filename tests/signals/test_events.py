"""Timed visual events: real clips with hand-labelled times (tests/assets/events.json), and
the gesture rules on made-up keypoint tracks (no licensed footage of waves, stop gestures or
pointing is in the test media)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import REPO, still_clip, whole_file_clip, zoom_clip

from curation.core.worker import Worker
from curation.signals.base import Keypoint
from curation.signals.events import EventRules, Frame, detect_events, open_palm
from curation.signals.hands import HandShape
from stages.events import EventsConfig, EventsStage

ASSETS = REPO / "tests" / "assets"
LABELS = json.loads((ASSETS / "events.json").read_text())


def on_time(event: dict, label: dict) -> bool:
    """ViSpeak-Bench's rule for a response at the event's end."""
    start, end = label["span"]
    return event["type"] == label["type"] and start - 1 <= event["end_s"] <= end + 2


@pytest.fixture(scope="module")
def stage() -> EventsStage:
    s = EventsStage(cfg=EventsConfig())
    s.setup(Worker.local())
    return s


def test_people_leaving_are_found_on_time_and_nothing_else(stage):
    name = "videos/intel_one-by-one-person-detection.mp4"
    clip = {**whole_file_clip(ASSETS / name), "end_s": 48.0}  # the first two people
    events, fps = stage.clip_events(clip)
    labels = [lab for lab in LABELS[name] if lab["span"][1] <= 48.0]
    assert fps == 5.0 and len(labels) == 2
    assert [e["type"] for e in events] == ["leave"] * 2
    assert all(on_time(e, lab) for e, lab in zip(events, labels, strict=True))
    assert [e["person"] for e in events] == [0, 1] and all(e["confidence"] > 0.5 for e in events)


def test_clips_without_events_have_none(stage, tmp_path):
    # Hands clasped in front of the chest through squats are no stop gesture; a talking head,
    # a signer and two men walking are nothing either.
    for name in ("videos/derived_talking_obama_910x1136.mp4", "videos/intel_asl_book.mkv",
                 "videos/moviepy_chaplin.mp4", "gestures/tfjs_pose_squats.mp4"):  # fmt: skip
        events, _ = stage.clip_events(whole_file_clip(ASSETS / name))
        assert events == [], name
    # Both arms held out straight (a yoga stance) are spread, not pointing.
    spread = still_clip(ASSETS / "stills" / "tfjs_pose_warrior.jpg", tmp_path / "warrior.mp4")
    assert stage.clip_events(whole_file_clip(spread))[0] == []


def test_a_raised_hand_in_a_head_and_shoulders_shot_is_found_on_time(stage):
    # Real footage: the fist goes up above her head, then a thumbs up (no event type) follows.
    name = "gestures/mediapipe_raise_hand_thumbs_up.mp4"
    events, _ = stage.clip_events(whole_file_clip(ASSETS / name))
    (label,) = LABELS[name]
    assert [e["type"] for e in events] == ["raise_hand"] and on_time(events[0], label)
    assert events[0]["person"] == 0 and events[0]["confidence"] > 0.5


def test_the_hand_model_sees_the_raised_fist_and_the_thumbs_up_as_no_open_palm(stage):
    # Real footage: it looks only where a wrist is above its shoulder, and there finds her
    # right hand closed (a fist, then a thumbs up): held still there, it would be no stop.
    name = "gestures/mediapipe_raise_hand_thumbs_up.mp4"
    frames, _ = stage.clip_frames(whole_file_clip(ASSETS / name))
    looked = [f for f in frames if f.hands is not None]
    assert 0 < len(looked) < len(frames)
    assert all(f.joints[5] and f.joints[1] and f.joints[5].y < f.joints[1].y for f in looked)
    assert sum(bool(f.hands) for f in looked) >= len(looked) - 1
    width = float(np.median([abs(f.joints[0].x - f.joints[1].x) for f in looked]))
    assert open_palm(looked, 1, width) is False
    assert all(h.fingers <= 2 for f in looked for h in f.hands)


def test_both_hands_raised_are_one_event_on_time(stage):
    # Real footage: walking toward the camera, she throws both arms up, then holds her face.
    name = "videos/tfjs_pose_raise_both_hands.mp4"
    events, _ = stage.clip_events(whole_file_clip(ASSETS / name))
    (label,) = LABELS[name]
    assert [e["type"] for e in events] == ["raise_hand"] and on_time(events[0], label)
    assert events[0]["hands"] == "both"


def test_a_face_coming_up_to_the_camera_is_an_approach(stage, tmp_path):
    (label,) = LABELS["derived:zoom_in"]
    coming = whole_file_clip(zoom_clip(tmp_path / "in.mp4"))
    (event,) = stage.clip_events(coming)[0]
    assert on_time(event, label) and event["confidence"] > 0.5
    going = whole_file_clip(zoom_clip(tmp_path / "out.mp4", zoom_in=False))
    assert stage.clip_events(going)[0] == []  # backing away: no approach, and no one leaves


# --- the rules on made-up tracks (12 joints: shoulders, elbows, wrists, hips, knees, ankles) --
def body(wrist_r=(0.30, 0.60), elbow_r=(0.32, 0.55), face=None, t=0.0, dx=0.0):
    """A person facing the camera, shoulders at y 0.4 (0.4 and 0.6 across), the arm of joints
    2 and 4 (the person's left elbow and wrist, on the image's left as if mirrored) free."""
    pts = [(0.40, 0.40), (0.60, 0.40), elbow_r, (0.62, 0.55), wrist_r, (0.62, 0.70),
           (0.43, 0.70), (0.57, 0.70), (0.43, 0.85), (0.57, 0.85), (0.43, 0.97), (0.57, 0.97)]  # fmt: skip
    joints = [Keypoint(x + dx, y, 0.95) for x, y in pts]
    joints[2], joints[4] = (
        Keypoint(elbow_r[0] + dx, elbow_r[1], 0.9),
        Keypoint(wrist_r[0] + dx, wrist_r[1], 0.9),
    )
    return Frame(t, joints, face)


def track(n, **make):
    return [body(t=i / 5, **{k: v(i) for k, v in make.items()}) for i in range(n)]


RULES = EventRules()


def kinds(frames):
    return [e["type"] for e in detect_events(frames, 5.0, RULES)]


def test_gesture_rules_on_keypoint_tracks():
    waving = track(
        15, wrist_r=lambda i: (0.30 + 0.08 * np.sin(i * 1.6), 0.25), elbow_r=lambda i: (0.33, 0.33)
    )
    assert kinds(waving) == ["wave"]
    stop = track(10, wrist_r=lambda i: (0.45, 0.30), elbow_r=lambda i: (0.40, 0.40))
    assert kinds(stop) == ["stop"]
    raised = track(10, wrist_r=lambda i: (0.10 + 0.02 * i, 0.25), elbow_r=lambda i: (0.25, 0.30))
    assert kinds(raised) == ["raise_hand"]
    pointing = track(10, wrist_r=lambda i: (0.05, 0.42), elbow_r=lambda i: (0.22, 0.41))
    assert kinds(pointing) == ["point"]
    assert kinds(track(10)) == []  # arms down: nothing
    brief = track(2, wrist_r=lambda i: (0.45, 0.30), elbow_r=lambda i: (0.40, 0.40)) + track(8)
    assert kinds(brief) == []  # raised for 0.4 s: shorter than min_gesture_s


def test_the_hand_model_turns_a_stop_held_as_a_fist_into_a_raised_hand():
    def held(hands):  # a hand held still in front of the face, and what the hand model saw
        frames = track(10, wrist_r=lambda i: (0.45, 0.30), elbow_r=lambda i: (0.40, 0.40))
        return [Frame(f.t, f.joints, f.face, hands) for f in frames]

    palm, fist = HandShape((0.45, 0.31), 5, 88.0, 0.9), HandShape((0.46, 0.30), 0, 80.0, 0.9)
    assert kinds(held([palm])) == ["stop"]
    assert kinds(held([fist])) == ["raise_hand"]
    assert kinds(held([HandShape((0.44, 0.30), 5, -90.0, 0.9)])) == ["raise_hand"]  # fingers down
    # Another hand far from that wrist, or none found: the body rule stands.
    assert kinds(held([HandShape((0.95, 0.90), 0, 90.0, 0.9)])) == ["stop"]
    assert kinds(held([])) == ["stop"]


def test_both_hands_make_one_event_and_spread_arms_no_point():
    def both(frames):  # the left arm mirrors the right about the body's centre line (x 0.5)
        for f in frames:
            f.joints[3] = Keypoint(1 - f.joints[2].x, f.joints[2].y, 0.9)
            f.joints[5] = Keypoint(1 - f.joints[4].x, f.joints[4].y, 0.9)
        return frames

    up = both(track(10, wrist_r=lambda i: (0.30, 0.20), elbow_r=lambda i: (0.33, 0.30)))
    (event,) = detect_events(up, 5.0, RULES)
    assert event["type"] == "raise_hand" and (event["start_s"], event["end_s"]) == (0.0, 1.8)
    assert event["hands"] == "both"
    (one,) = detect_events(track(10, wrist_r=lambda i: (0.30, 0.20)), 5.0, RULES)
    assert one["hands"] == "left"  # joints 2 and 4 are the person's left elbow and wrist
    spread = both(track(10, wrist_r=lambda i: (0.05, 0.42), elbow_r=lambda i: (0.22, 0.41)))
    assert kinds(spread) == []


def test_approach_and_leave_on_tracks():
    coming = track(12, face=lambda i: (0.10 + 0.02 * i, 0.9))  # the face grows 2.1x
    (event,) = detect_events(coming, 5.0, RULES)
    assert event["type"] == "approach" and event["start_s"] == 0.0 and event["confidence"] == 0.9
    gone = track(10, dx=lambda i: 0.05 * max(0, i - 5)) + [
        Frame(2.0 + k / 5, [None] * 12, None) for k in range(6)
    ]
    (event,) = detect_events(gone, 5.0, RULES)
    assert (
        event["type"] == "leave"
        and event["end_s"] == 2.0
        and event["start_s"] == pytest.approx(1.0)
    )
    back = track(10) + [Frame(2.0 + k / 5, [None] * 12, None) for k in range(3)]  # 0.6 s away
    assert detect_events(back, 5.0, RULES) == []
