"""`make export FORMAT=vispeak`: ViSpeak-Instruct's streaming items from the timed events.

ViSpeak (streaming visual instruction feedback) learns to answer when a visual event is the
instruction. Its annotations: a JSON list of `{"video", "conversations"}` where every turn has
a `time` in seconds and an assistant turn triggered by a visual event also has `timespan`,
the interval in which the event happens; ViSpeak-Bench takes a response at t as on time when
start - 1 <= t <= end + 2. From each event (confidence at least `min_confidence`):

- `approach`, `wave` → Visual Wake-Up: one assistant turn, a greeting, at the event's end;
- `raise_hand`, `point` → Gesture Understanding / Visual Reference: the user asks at the
  clip's start what they do; the answer comes at the event's end;
- `stop` → Visual Interruption: the user asks for a long description; the assistant stops;
- `leave` → Visual Termination: the assistant says goodbye as the person goes.

Items are written to `exports/vispeak.json` and pass `check_item` first.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from curation.instructions.exports import JsonListWriter
from curation.rundir import RunDir

REPLIES: dict[str, tuple[str | None, str, str]] = {
    # event: (the user's turn at the start or None, the reply, ViSpeak's task)
    "approach": (None, "Hi there! How can I help you?", "visual_wake_up"),
    "wave": (None, "Hello! I see you waving. What can I do for you?", "visual_wake_up"),
    "raise_hand": ("Watch me and tell me what I do with my hands.", "You raised your hand.",
                   "gesture_understanding"),
    "point": ("Tell me when I point at something.", "You are pointing at something to your side.",
              "visual_reference"),
    "stop": ("Describe everything you can see around me, in detail.",
             "All right, I will stop here.", "visual_interruption"),
    "leave": ("Keep me company while I am here.", "Goodbye, see you next time!",
              "visual_termination"),
}  # fmt: skip
BOTH_HANDS = {"raise_hand": "You raised both hands."}  # the reply when both hands made it
ON_TIME_BEFORE, ON_TIME_AFTER = 1.0, 2.0  # ViSpeak-Bench's timing rule


def items_for(clip: dict[str, Any], min_confidence: float) -> list[dict[str, Any]]:
    """The clip's ViSpeak items, one per event the evidence supports."""
    duration = float(clip["end_s"]) - float(clip["start_s"])
    out = []
    for k, event in enumerate(clip.get("events") or []):
        if event["confidence"] < min_confidence or event["type"] not in REPLIES:
            continue
        ask, reply, task = REPLIES[event["type"]]
        if event.get("hands") == "both":
            reply = BOTH_HANDS.get(event["type"], reply)
        span = [round(event["start_s"], 3), round(min(event["end_s"], duration), 3)]
        answer = {"from": "gpt", "value": reply, "time": span[1], "timespan": span}
        turns = [answer] if ask is None else [{"from": "human", "value": ask, "time": 0.0}, answer]
        out.append({"id": f"{clip['clip_id']}-{k}", "video": clip["clip_path"], "task": task,
                    "duration_s": round(duration, 3), "person": event["person"],
                    "conversations": turns})  # fmt: skip
    return out


def check_item(item: Any) -> list[str]:
    """What is wrong with one ViSpeak item (empty when well formed)."""
    if not isinstance(item, dict) or not isinstance(item.get("video"), str) or not item["video"]:
        return ["needs a video path"]
    turns, duration = item.get("conversations"), item.get("duration_s")
    if not isinstance(turns, list) or not turns:
        return ["conversations must be a non-empty list"]
    problems, last = [], 0.0
    for i, turn in enumerate(turns):
        t = turn.get("time") if isinstance(turn, dict) else None
        if not isinstance(t, int | float) or not 0.0 <= t <= (duration or 0.0):
            problems.append(f"turn {i}: time must lie inside the clip")
            continue
        if t < last:
            problems.append(f"turn {i}: times must not go back")
        last = t
        if turn.get("from") not in ("human", "gpt") or not str(turn.get("value") or "").strip():
            problems.append(f"turn {i}: needs from human/gpt and a text")
        span = turn.get("timespan")
        if span is not None:
            if (
                turn.get("from") != "gpt"
                or len(span) != 2
                or not 0 <= span[0] <= span[1] <= duration
            ):
                problems.append(f"turn {i}: timespan must be an ordered interval in the clip")
            elif not span[0] - ON_TIME_BEFORE <= t <= span[1] + ON_TIME_AFTER:
                problems.append(f"turn {i}: the reply is not on time for its event")
    if len(turns) > 1 and any(a.get("from") == b.get("from") for a, b in pairwise(turns)):
        problems.append("turns must alternate human and gpt")
    if len(turns) == 1 and turns[0].get("from") != "gpt":
        problems.append("a single turn must be the assistant's (a wake-up)")
    return problems


def write_vispeak(run: RunDir, folder: str, min_confidence: float) -> dict[str, Any]:
    """exports/vispeak.json from the kept rows of `folder`, streamed; returns the counts."""
    tasks: dict[str, int] = {}
    clips = virtual = 0
    with run.storage.open_output("exports/vispeak.json") as fh:
        out = JsonListWriter(fh, "vispeak.json", check=check_item)
        for unit in sorted(run.units(folder)):
            for clip in run.read_unit(folder, unit).to_pylist():
                if not clip["kept"] or not clip.get("events"):
                    continue
                if not clip.get("clip_path"):
                    virtual += 1
                    continue
                items = items_for(clip, min_confidence)
                clips += bool(items)
                for item in items:
                    out.add(item)  # checked before it is written
                    tasks[item["task"]] = tasks.get(item["task"], 0) + 1
        out.close()
    return {"items": out.count, "clips": clips, "tasks": dict(sorted(tasks.items())),
            "virtual_clips_left_out": virtual}  # fmt: skip
