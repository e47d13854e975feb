"""Timed visual events from body keypoints and face boxes over time (the events stage).

Per frame (read at `events.fps`) the pose model's 12 body joints (framing.py's order:
shoulders, elbows, wrists, hips, knees, ankles, left then right) and the largest face. A person
is present where body_in_view says so or a face is seen; each new appearance after an absence
is a new person (0, 1, ...). Distances are in shoulder widths, so the rules hold at any size in the frame:

- `raise_hand`: a wrist above its shoulder by 0.3 shoulder widths for `min_gesture_s`;
  while raised, `wave` when the wrist swings sideways (at least `wave_swings` reversals of
  0.3 shoulder widths or more), `stop` when it stays put (moves under 0.3) in front of the
  body (within a shoulder width of its centre line) at face height (not more than a shoulder
  width above the shoulder: higher, it is a raised hand), unless the hand model (hands.py, on
  the frames with a wrist above its shoulder) sees that hand as anything but an open palm with
  the fingers up (a fist or a thumbs up held there is a raised hand);
- `point`: an arm held straight (elbow angle over 150 degrees), the wrist a shoulder width or
  more to the side, not raised, for `min_gesture_s`, while the other arm is not (both held out
  are arms spread);
- `approach`: a face that grows by `approach_growth` (height) within a stretch where it is
  seen, the person coming up to the camera facing it;
- `leave`: a person seen for a second or more, then gone: for `leave_absent_s` after walking
  off (the body centre moving), or for `rejoin_s` without (someone back sooner is the same
  person, hidden a moment), before someone else comes or to the end; the event spans the last
  stretch of walking.

A face vouches for a person whose pose shows too few joints for framing.py's body check (a
head-and-shoulders shot): then the joints in view are used as they are.

Both hands making the same gesture at once are one event. Each event: type, [start, end]
seconds in the clip, a confidence (the joints' mean visibility over the event, or the face
detector's score), the person it belongs to and, for a hand's gesture, which hands made it
(`left`, `right`, the person's own, or `both`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from curation.signals.base import Keypoint
from curation.signals.framing import body_in_view, in_view
from curation.signals.hands import HandShape

SHOULDER, ELBOW, WRIST, HIP = (0, 1), (2, 3), (4, 5), (6, 7)
RAISE, SWING, STILL = 0.3, 0.3, 0.3  # in shoulder widths
HANDS = ("left", "right")  # the person's own, as the pose model names the joints
NEAR = 1.0  # a hand model's wrist this close to the pose's (shoulder widths) is that hand
STOP_HEIGHT = 1.0  # a palm held up to stop is at face height; a hand above the head is raised


@dataclass(frozen=True)
class EventRules:
    min_gesture_s: float = 0.6
    wave_swings: int = 2
    approach_growth: float = 1.4
    leave_absent_s: float = 1.0
    rejoin_s: float = 2.5
    min_visibility: float = 0.5


@dataclass
class Frame:
    t: float
    joints: list[Keypoint | None]  # the 12 body joints, None where not in view
    face: tuple[float, float] | None  # (height, score) of the largest face, normalised
    hands: list[HandShape] | None = None  # the hand model's; None where it did not look


def wrist_up(points: list[Keypoint], body: tuple[int, ...], min_visibility: float) -> bool:
    """Whether a wrist in view is above its shoulder: the frames the hand model looks at."""
    if not points or not body:
        return False
    for side in (0, 1):
        s, w = points[body[SHOULDER[side]]], points[body[WRIST[side]]]
        if in_view(s, min_visibility) and in_view(w, min_visibility) and w.y < s.y:
            return True
    return False


def frames_from(
    times: list[float],
    poses: list[list[Keypoint]],
    faces: list[tuple[float, float] | None],
    body: tuple[int, ...],
    min_visibility: float,
    hands: list[list[HandShape] | None] | None = None,
) -> list[Frame]:
    out = []
    for k, (t, points, face) in enumerate(zip(times, poses, faces, strict=True)):
        seen = body_in_view(points, body, min_visibility) if body else []
        if face is not None and points and body and not any(seen):
            # A face vouches for the person: a head-and-shoulders shot shows too few joints
            # for body_in_view, and its shoulders and arms are what gestures are read from.
            raw = [in_view(points[j], min_visibility) for j in body]
            if raw[SHOULDER[0]] and raw[SHOULDER[1]]:
                seen = raw
        joints = [points[j] if s else None for j, s in zip(body, seen, strict=True)]
        out.append(Frame(t, joints, face, hands[k] if hands else None))
    return out


def _runs(mask: list[bool]) -> list[tuple[int, int]]:
    """[start, end) index ranges where mask is True."""
    runs, start = [], None
    for i, m in enumerate([*mask, False]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            runs.append((start, i))
            start = None
    return runs


def _width(f: Frame) -> float | None:
    a, b = f.joints[SHOULDER[0]], f.joints[SHOULDER[1]]
    return abs(a.x - b.x) if a and b and abs(a.x - b.x) > 1e-3 else None


def _event(
    kind: str, frames: list[Frame], i: int, j: int, person: int, conf: float,
    hands: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    return {"type": kind, "start_s": round(frames[i].t, 3), "end_s": round(frames[j - 1].t, 3),
            "confidence": round(float(conf), 3), "person": person, "hands": hands}  # fmt: skip


def _visibility(frames: list[Frame], side: int) -> float:
    vis = [
        f.joints[k].visibility for f in frames for k in (SHOULDER[side], WRIST[side]) if f.joints[k]
    ]
    return float(np.mean(vis)) if vis else 0.0


def reversals(x: np.ndarray, h: float) -> int:
    """Times the series turns back by at least `h` from its last extreme (hysteresis)."""
    count, direction, extreme = 0, 0, float(x[0])
    for v in map(float, x[1:]):
        if direction == 0:
            if abs(v - extreme) >= h:
                direction, extreme = (1 if v > extreme else -1), v
        elif direction * (v - extreme) > 0:
            extreme = v
        elif abs(v - extreme) >= h:
            count, direction, extreme = count + 1, -direction, v
    return count


def hand_events(
    frames: list[Frame], person: int, rules: EventRules, fps: float
) -> list[dict[str, Any]]:
    out = []
    min_len = max(1, round(rules.min_gesture_s * fps))
    arms = [_arm(frames, side) for side in (0, 1)]
    for side, hand in enumerate(HANDS):
        raised, held_out = arms[side]
        # Both arms held out at once are spread (a T-pose, a yoga stance), not pointing.
        pointing = [h and not o for h, o in zip(held_out, arms[1 - side][1], strict=True)]
        for i, j in _runs(raised):
            if j - i < min_len:
                continue
            part = frames[i:j]
            width = float(np.median([_width(f) for f in part]))
            x = np.array([f.joints[WRIST[side]].x for f in part]) / width
            centre = (
                np.array([(f.joints[SHOULDER[0]].x + f.joints[SHOULDER[1]].x) / 2 for f in part])
                / width
            )
            rise = np.array(
                [(f.joints[SHOULDER[side]].y - f.joints[WRIST[side]].y) / width for f in part]
            )
            if reversals(x, SWING) >= rules.wave_swings:
                kind = "wave"
            elif (
                np.ptp(x) < STILL
                and np.all(np.abs(x - centre) <= 1.0)
                and float(rise.max()) <= STOP_HEIGHT
                and open_palm(part, side, width) is not False
            ):
                kind = "stop"
            else:
                kind = "raise_hand"
            out.append(_event(kind, frames, i, j, person, _visibility(part, side), hand))
        for i, j in _runs(pointing):
            if j - i >= min_len:
                conf = _visibility(frames[i:j], side)
                out.append(_event("point", frames, i, j, person, conf, hand))
    return merge_hands(out)


def open_palm(frames: list[Frame], side: int, width: float) -> bool | None:
    """What the hand model saw at this side's wrist over `frames`: an open palm with the
    fingers up in at least half the frames where it found that hand (True), or not (False: a
    fist, a thumbs up, a hand held out); None where it did not look or found no hand there."""
    votes = []
    for f in frames:
        w = f.joints[WRIST[side]]
        if not f.hands or w is None:
            continue
        near = [(np.hypot(h.wrist[0] - w.x, h.wrist[1] - w.y), h) for h in f.hands]
        gap, hand = min(near, key=lambda d: d[0])
        if gap <= NEAR * width:
            votes.append(hand.open_up)
    return None if not votes else 2 * sum(votes) >= len(votes)


def _arm(frames: list[Frame], side: int) -> tuple[list[bool], list[bool]]:
    """Per frame: the wrist raised above its shoulder; the arm held straight out to the side
    (elbow over 150 degrees, the wrist a shoulder width or more aside) and not raised."""
    raised, held_out = [], []
    for f in frames:
        s, e, w, width = (f.joints[SHOULDER[side]], f.joints[ELBOW[side]], f.joints[WRIST[side]],
                          _width(f))  # fmt: skip
        ok = s is not None and w is not None and width is not None
        raised.append(ok and (s.y - w.y) / width >= RAISE)
        straight = False
        if ok and e is not None:
            u, v = np.array([s.x - e.x, s.y - e.y]), np.array([w.x - e.x, w.y - e.y])
            cos = float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-9))
            straight = cos < np.cos(np.radians(150)) and abs(w.x - s.x) / width >= 1.0
        held_out.append(straight and not raised[-1])
    return raised, held_out


def merge_hands(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One event where both hands make the same gesture at overlapping times (both hands up is
    one raised hand): the union of the spans, the surer confidence."""
    out: list[dict[str, Any]] = []
    for e in sorted(events, key=lambda e: (e["type"], e["start_s"])):
        last = out[-1] if out else None
        if last and last["type"] == e["type"] and e["start_s"] <= last["end_s"]:
            last["end_s"] = max(last["end_s"], e["end_s"])
            last["confidence"] = max(last["confidence"], e["confidence"])
            if last["hands"] != e["hands"]:
                last["hands"] = "both"
        else:
            out.append(dict(e))
    return out


def approach_events(
    frames: list[Frame], person: int, rules: EventRules, fps: float
) -> list[dict[str, Any]]:
    out = []
    for i, j in _runs([f.face is not None for f in frames]):
        heights = np.array([frames[k].face[0] for k in range(i, j)])
        if len(heights) < 3:
            continue
        low = int(np.argmin(heights))
        # It ends where the face first comes within 5% of its largest (it then stays close).
        high = low + int(np.argmax(heights[low:] >= 0.95 * heights[low:].max()))
        if heights[high] >= rules.approach_growth * heights[low] and high - low >= round(0.5 * fps):
            score = float(np.mean([frames[k].face[1] for k in range(i + low, i + high + 1)]))
            out.append(_event("approach", frames, i + low, i + high + 1, person, score))
    return out


def detect_events(frames: list[Frame], fps: float, rules: EventRules) -> list[dict[str, Any]]:
    """Every event in one clip's frames, in time order."""
    if not frames:
        return []
    # A face is a person too: coming up to the camera, the body leaves the frame first.
    present = [any(j is not None for j in f.joints) or f.face is not None for f in frames]
    absent_len = max(1, round(rules.leave_absent_s * fps))
    rejoin_len = max(absent_len, round(rules.rejoin_s * fps))
    # Appearances: runs of presence, bridging gaps shorter than an absence, and gaps shorter
    # than `rejoin_s` after which nobody had walked off (the same person, hidden a moment).
    spans: list[tuple[int, int]] = []
    for i, j in _runs(present):
        gap = i - spans[-1][1] if spans else 0
        if spans and (gap < absent_len or (gap < rejoin_len and not _walked(frames, *spans[-1]))):
            spans[-1] = (spans[-1][0], j)
        else:
            spans.append((i, j))
    events: list[dict[str, Any]] = []
    for person, (i, j) in enumerate(spans):
        part = frames[i:j]
        events += hand_events(part, person, rules, fps)
        events += approach_events(part, person, rules, fps)
        # Gone: someone else comes later (spans are at least an absence apart) or nobody does.
        later = person < len(spans) - 1
        # Out of sight to the end without moving (a hand over the lens, the detectors losing
        # a close-up) is not leaving; long enough before someone else comes, it is.
        gone = later or (len(frames) - j >= absent_len and _walked(frames, i, j))
        if gone and (part[-1].t - part[0].t) >= 1.0:
            events.append(leave_event(frames, i, j, person))
    return sorted(events, key=lambda e: (e["start_s"], e["type"]))


def _centre(f: Frame) -> np.ndarray | None:
    pts = [f.joints[k] for k in (*SHOULDER, *HIP) if f.joints[k] is not None]
    return np.array([np.mean([p.x for p in pts]), np.mean([p.y for p in pts])]) if pts else None


def _walked(frames: list[Frame], i: int, j: int) -> bool:
    """Whether the person of frames[i:j] was walking when last seen."""
    return leave_event(frames, i, j, 0)["start_s"] < frames[j - 1].t


def leave_event(frames: list[Frame], i: int, j: int, person: int) -> dict[str, Any]:
    """From where the person starts walking off (body centre moving 0.1 frame/s or more) to the
    first frame without them."""
    start = j - 1
    while start > i:
        a, b = _centre(frames[start - 1]), _centre(frames[start])
        dt = frames[start].t - frames[start - 1].t
        if a is None or b is None or dt <= 0 or np.linalg.norm(b - a) / dt < 0.1:
            break
        start -= 1
    vis = [p.visibility for f in frames[start:j] for p in f.joints if p is not None]
    end = frames[j].t if j < len(frames) else frames[-1].t
    return {"type": "leave", "start_s": round(frames[start].t, 3), "end_s": round(end, 3),
            "confidence": round(float(np.mean(vis)) if vis else 0.0, 3), "person": person,
            "hands": None}  # fmt: skip
