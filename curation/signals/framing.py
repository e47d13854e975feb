"""Framing of a clip from its body keypoints and boxes: close_up, half_body, full_body, none.

A frame with a pose is full_body when an ankle or both knees are in view, half_body when a
hip is, close_up when only the head and shoulders are (keypoints with the model's visibility
at least min_visibility and inside the frame). Without a pose, a face at least `close_up_face`
of the frame's height is a close-up, a person box more than twice as tall as wide a full
body, anything else human half a body. The clip takes the framing most of its frames with a
person have; none when no frame has one. A face that large overrides the keypoints. A pose
counts as a person only with MIN_JOINTS joints in view, both shoulders or both hips among
them, spread over MIN_SPREAD of the frame.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from curation.signals.base import Keypoint

FRAMINGS = ("close_up", "half_body", "full_body", "none")
# Positions in the 12-joint body tuple of a pose backend (pose.py / pose_ultralytics.py):
# shoulders, elbows, wrists, hips, knees, ankles, left then right.
SHOULDERS, HIPS, KNEES, ANKLES = (0, 1), (6, 7), (8, 9), (10, 11)
# A pose is a person when at least this many joints, both shoulders or both hips among them,
# are in view: BlazePose also fits a body to an empty landscape now and then, with most of
# its joints outside the frame.
MIN_JOINTS = 4
# ...and they must span this much of the frame (diagonal of their box; shoulders to hips half
# as much): in an empty room it also folds a skeleton into one point.
MIN_SPREAD = 0.05


def in_view(point: Keypoint, min_visibility: float) -> bool:
    return point.visibility >= min_visibility and 0.0 <= point.x <= 1.0 and 0.0 <= point.y <= 1.0


def body_in_view(
    points: list[Keypoint], body: tuple[int, ...], min_visibility: float
) -> list[bool]:
    """Which of the 12 body joints are in view; all False when the pose is not a person."""
    if not points:
        return [False] * len(body)
    seen = [in_view(points[j], min_visibility) for j in body]
    person = sum(seen) >= MIN_JOINTS and any(
        all(seen[j] for j in pair) for pair in (SHOULDERS, HIPS)
    )
    if person:
        xs = [points[j].x for j, s in zip(body, seen, strict=True) if s]
        ys = [points[j].y for j, s in zip(body, seen, strict=True) if s]
        person = float(np.hypot(max(xs) - min(xs), max(ys) - min(ys))) >= MIN_SPREAD
        top = [points[body[j]] for j in SHOULDERS if seen[j]]
        low = [points[body[j]] for j in HIPS if seen[j]]
        if person and top and low:  # a torso, not shoulders on top of hips
            dy = np.mean([p.y for p in low]) - np.mean([p.y for p in top])
            dx = np.mean([p.x for p in low]) - np.mean([p.x for p in top])
            person = float(np.hypot(dx, dy)) >= MIN_SPREAD / 2
    return seen if person else [False] * len(body)


def pose_framing(points: list[Keypoint], body: tuple[int, ...], min_visibility: float) -> str:
    """One frame's framing from its keypoints (`body`: the backend's 12 joint indices)."""
    seen = body_in_view(points, body, min_visibility)
    if not any(seen):
        return "none"
    if any(seen[j] for j in ANKLES) or all(seen[j] for j in KNEES):
        return "full_body"
    if any(seen[j] for j in HIPS):
        return "half_body"
    return "close_up"


def box_framing(boxes: list[dict[str, Any]], close_up_face: float) -> str:
    """One frame's framing from its face and person boxes (normalised coordinates)."""
    faces = [b["ny2"] - b["ny1"] for b in boxes if b["cls"] == "face"]
    if faces and max(faces) >= close_up_face:
        return "close_up"
    persons = [b for b in boxes if b["cls"] == "person"]
    if persons:
        tallest = max(persons, key=lambda b: b["ny2"] - b["ny1"])
        return (
            "full_body"
            if (tallest["y2"] - tallest["y1"]) > 2 * (tallest["x2"] - tallest["x1"])
            else "half_body"
        )
    return "half_body" if faces else "none"


def clip_framing(
    poses: list[list[Keypoint]],
    body: tuple[int, ...],
    boxes: list[dict[str, Any]],
    frames_sampled: int,
    min_visibility: float,
    close_up_face: float,
) -> str:
    """The framing most frames with a person show; `boxes` are the boxes stage's rows."""
    by_frame: dict[int, list[dict[str, Any]]] = {}
    for b in boxes:
        by_frame.setdefault(b["frame"], []).append(b)
    face_share = sorted(
        max(b["ny2"] - b["ny1"] for b in found if b["cls"] == "face")
        for found in by_frame.values()
        if any(b["cls"] == "face" for b in found)
    )
    if face_share and face_share[len(face_share) // 2] >= close_up_face:
        return "close_up"
    votes = [v for p in poses if (v := pose_framing(p, body, min_visibility)) != "none"]
    if not votes:
        votes = [box_framing(by_frame.get(i, []), close_up_face) for i in range(frames_sampled)]
    votes = [v for v in votes if v != "none"]
    if not votes:
        return "none"
    counts = Counter(votes)
    return max(FRAMINGS[:3], key=lambda f: (counts[f], -FRAMINGS.index(f)))


def pose_visible(
    poses: list[list[Keypoint]], body: tuple[int, ...], min_visibility: float
) -> float:
    """Mean share of the 12 body joints in view over the sampled frames (0 without a person)."""
    if not poses or not body:
        return 0.0
    shares = [sum(body_in_view(p, body, min_visibility)) / len(body) for p in poses]
    return round(sum(shares) / len(shares), 4)
