"""`make export FORMAT=vispeak`: ViSpeak-Instruct's items from the timed events, as ViSpeak's
own trainer reads them.

ViSpeak (streaming visual instruction feedback) learns when a visual event is the instruction.
Its loader (`LazySupervisedDataset` in ViSpeak's `vispeak/util/data_utils.py`) samples a clip
at 1 fps (at least `min_frames`, at most `max_frames`, spread evenly when outside), lays the
frames and the user's text turns on one timeline, and puts each assistant turn right after
the last frame (a triggered reply) or user text (an answer) at or before its `time`. Its
informative head, which decides *when* to speak, is trained positive on the frames in the
second half of a triggered reply's `timespan`. ViSpeak-Bench counts a reply at t as on time
when max(0, start) <= t <= end + 2. So, per event (confidence at least `min_confidence`):

- `timespan` is the event widened to at least `min_span_s` (about 2 s, as ViSpeak's data),
  and further to the next sampled frame when its second half would hold none; the reply's
  `time` is the first sampled frame in that second half: it comes after that frame, and at
  least one frame is labelled positive;
- `approach`, `wave` → Visual Wake-Up: one turn, the assistant's greeting, triggered;
- `raise_hand` → Gesture Understanding: the user asks at 0 s, the assistant answers at once,
  then replies, triggered, to the gesture (three turns);
- `stop` → Visual Interruption and `leave` → Visual Termination: the user speaks first (a
  `timespan` from 0 s and a `time` at the end of the utterance), the assistant answers, then
  stops or says goodbye, triggered (three turns); an event too early to leave room for them
  makes no item;
- `point` → Visual Reference: the user asks about it once it is shown, the assistant answers
  (trained as an answer, no informative labels: registered with `no_visual_proactive`).

Every item has `proactive` and `use_audio` (the streaming route reads `proactive`; a missing
key makes the loader train on a random other item instead). One JSON file per subtask under
`exports/vispeak/`, each registered in `dataset_config.json` beside them with the flags that
route it (`streaming` + `audio_proactive`), printed for the user to paste into ViSpeak's
`vispeak/config/dataset_config.py`. Every item passes `check_item` first.
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import numpy as np

from curation.export.config import VispeakConfig
from curation.instructions.exports import JsonListWriter
from curation.rundir import RunDir

# subtask -> the flags of its dataset_config entry
ROUTES: dict[str, dict[str, bool]] = {
    "visual_wake_up": {"streaming": True, "audio_proactive": True},
    "gesture_understanding": {"streaming": True, "audio_proactive": True},
    "visual_interruption": {"streaming": True, "audio_proactive": True},
    "visual_termination": {"streaming": True, "audio_proactive": True},
    "visual_reference": {"streaming": True, "audio_proactive": True, "no_visual_proactive": True},
}
# The interrupted long answer: the clip's own detailed caption where the run has one.
DESCRIBE = "Sure. Let me describe the scene around you, starting with the people in it."
# event -> (subtask, the user's turn or None, the assistant's answer to it or None, the reply)
TEXTS: dict[str, tuple[str, str | None, str | None, str]] = {
    "approach": ("visual_wake_up", None, None, "Hi there! How can I help you?"),
    "wave": ("visual_wake_up", None, None, "Hello! I see you waving. What can I do for you?"),
    "raise_hand": ("gesture_understanding", "Watch me and tell me what I do with my hands.",
                   "Sure, I am watching.", "You raised your hand."),
    "stop": ("visual_interruption", "Describe what you see around me, in detail.",
             DESCRIBE, "All right, I will stop here."),
    "leave": ("visual_termination", "Keep me company while I am here.",
              "Of course, I am here with you.", "Goodbye, see you next time!"),
    "point": ("visual_reference", "What am I pointing at?", None,
              "You are pointing at something to your side."),
}  # fmt: skip
BOTH_HANDS = {"raise_hand": "You raised both hands."}  # the reply when both hands made it
ON_TIME_AFTER = 2.0  # ViSpeak-Bench: on time when max(0, start) <= t <= end + 2
ANSWER_DELAY_S = 0.1  # an answer's time after the user's turn (ViSpeak-Bench's items: 0.1 s)
WORD_S = 0.35  # seconds a user's word takes to say: a turn's utterance length


def _up(x: float) -> float:
    """Rounded up to the millisecond: a time never falls before the frame it follows."""
    return math.ceil(x * 1000 - 1e-6) / 1000


def _down(x: float) -> float:
    return math.floor(x * 1000 + 1e-6) / 1000


def sample_times(frames: int, fps: float, cfg: VispeakConfig) -> list[float]:
    """The times of the frames ViSpeak's loader samples from a clip of `frames` frames: every
    round(fps / frame_rate)-th frame from the first, spread evenly over them when more than
    `max_frames`, over the whole clip when fewer than `min_frames` (its stage-3 settings)."""
    if frames <= 0 or fps <= 0:
        return []
    stride = max(1, round(fps / cfg.frame_rate))
    positions = list(range(0, frames, stride))
    if len(positions) > cfg.max_frames:
        idx = np.linspace(0, len(positions) - 1, num=cfg.max_frames, dtype=int)
        positions = [positions[i] for i in idx]
    elif len(positions) < cfg.min_frames:
        positions = np.linspace(0, frames - 1, num=cfg.min_frames, dtype=int).tolist()
    return [p / fps for p in positions]


def positive_frames(times: list[float], span: list[float]) -> list[float]:
    """The sampled frames ViSpeak's informative head learns to speak at: the span's second half."""
    middle = (span[0] + span[1]) / 2
    return [t for t in times if middle <= t <= span[1]]


def trigger_window(
    start: float, end: float, duration: float, times: list[float], min_span_s: float
) -> tuple[list[float], float] | None:
    """The reply's `timespan` and `time` for an event over [start, end] in a clip of
    `duration` s: the reply follows the first frame of the span's second half that is shown
    at or after the event's start (a reply never comes before what it reacts to). None when
    the clip has no such frame."""
    limit = _down(duration)
    s, e = max(0.0, start), min(end, limit)
    if e - s < min_span_s:
        e = min(limit, s + min_span_s)
        s = max(0.0, e - min_span_s)
    span = [_down(s), min(_up(e), limit)]

    def first() -> float | None:
        return next((t for t in positive_frames(times, span) if t >= start - 1e-9), None)

    while (at := first()) is None:
        later = [t for t in times if span[1] < t <= limit]
        if not later:
            return None
        span[1] = min(_up(later[0]), limit)
    return span, min(_up(at), limit)


def items_for(clip: dict[str, Any], cfg: VispeakConfig, video: str) -> list[dict[str, Any]]:
    """The clip's ViSpeak items, one per event the evidence supports; `video` is its path
    as the items name it (relative to the registered video folder)."""
    duration = _down(float(clip["end_s"]) - float(clip["start_s"]))
    fps = float(clip.get("fps") or 25.0)
    frames = int(clip.get("end_frame", 0) - clip.get("start_frame", 0)) or round(duration * fps)
    times = sample_times(frames, fps, cfg)
    out = []
    for k, event in enumerate(clip.get("events") or []):
        if event["confidence"] < cfg.min_confidence or event["type"] not in TEXTS:
            continue
        task, ask, answer, reply = TEXTS[event["type"]]
        if answer is DESCRIBE:
            answer = clip.get("consensus") or clip.get("brief_caption") or DESCRIBE
        if event.get("hands") == "both":
            reply = BOTH_HANDS.get(event["type"], reply)
        elif event["type"] == "point" and event.get("hands") in ("left", "right"):
            reply = f"You are pointing with your {event['hands']} hand at something to your side."
        turns = conversation(event, task, ask, answer, reply, duration, times, cfg)
        if turns is None:
            continue
        out.append({"id": f"{clip['clip_id']}-{k}", "video": video, "task": task,
                    "proactive": task != "visual_reference", "use_audio": False,
                    "duration_s": duration, "fps": fps, "n_frames": frames,
                    "person": event["person"], "conversations": turns,
                    "event_s": [round(event["start_s"], 3), round(event["end_s"], 3)]})  # fmt: skip
    return out


def conversation(
    event: dict[str, Any],
    task: str,
    ask: str | None,
    answer: str | None,
    reply: str,
    duration: float,
    times: list[float],
    cfg: VispeakConfig,
) -> list[dict[str, Any]] | None:
    """The turns of one event's item, or None when the clip leaves no room for them."""
    if task == "visual_reference":  # asked once the pointing is shown, answered at once
        asked = min(_up(max(event["end_s"], event["start_s"])),
                    _down(duration - ANSWER_DELAY_S))  # fmt: skip
        return [{"from": "human", "value": ask, "time": asked},
                {"from": "gpt", "value": reply, "time": _up(asked + ANSWER_DELAY_S)}]  # fmt: skip
    window = trigger_window(event["start_s"], event["end_s"], duration, times, cfg.min_span_s)
    if window is None:
        return None
    span, at = window
    triggered = {"from": "gpt", "value": reply, "time": at, "timespan": span}
    if ask is None:
        return [triggered]
    said = 0.0
    if task in ("visual_interruption", "visual_termination"):
        # The user speaks from 0 s; the answer and the utterance end before the event starts.
        said = _up(min(3.0, max(1.0, WORD_S * len(ask.split()))))
        if said + ANSWER_DELAY_S >= span[0]:
            return None
    human: dict[str, Any] = {"from": "human", "value": ask, "time": said}
    if said:
        human["timespan"] = [0.0, said]
    return [human, {"from": "gpt", "value": answer, "time": _up(said + ANSWER_DELAY_S)},
            triggered]  # fmt: skip


def check_item(item: Any, cfg: VispeakConfig | None = None) -> list[str]:
    """What ViSpeak's loader or ViSpeak-Bench would get wrong with one item (empty when none)."""
    cfg = cfg or VispeakConfig()
    if not isinstance(item, dict) or not isinstance(item.get("video"), str) or not item["video"]:
        return ["needs a video path"]
    problems = [f"needs `{k}` (a bool)" for k in ("proactive", "use_audio")
                if not isinstance(item.get(k), bool)]  # fmt: skip
    turns, duration = item.get("conversations"), float(item.get("duration_s") or 0.0)
    if not isinstance(turns, list) or not turns:
        return [*problems, "conversations must be a non-empty list"]
    times = sample_times(int(item.get("n_frames") or 0), float(item.get("fps") or 0), cfg)
    last, triggered = 0.0, 0
    for i, turn in enumerate(turns):
        t = turn.get("time") if isinstance(turn, dict) else None
        if not isinstance(t, int | float) or not 0.0 <= t <= duration:
            problems.append(f"turn {i}: time must lie inside the clip")
            continue
        if t < last:
            problems.append(f"turn {i}: times must not go back")
        last = t
        if turn.get("from") not in ("human", "gpt") or not str(turn.get("value") or "").strip():
            problems.append(f"turn {i}: needs from human/gpt and a text")
        span = turn.get("timespan")
        if turn.get("from") == "human":
            if span is not None and not (len(span) == 2 and 0 <= span[0] <= span[1] == t):
                problems.append(f"turn {i}: a user's timespan must end at its time")
            continue
        if span is None:
            if i == 0 or turns[i - 1].get("from") != "human":
                problems.append(f"turn {i}: an untriggered reply must answer a user's turn")
            continue
        triggered += 1
        event = item.get("event_s")
        if event and t < event[0] - 1e-9:
            problems.append(f"turn {i}: the reply comes before its event starts")
        if len(span) != 2 or not 0 <= span[0] <= span[1] <= duration:
            problems.append(f"turn {i}: timespan must be an ordered interval in the clip")
        elif not max(0.0, span[0]) <= t <= span[1] + ON_TIME_AFTER:
            problems.append(f"turn {i}: the reply is not on time for its event")
        elif not (positive := positive_frames(times, span)):
            problems.append(f"turn {i}: no sampled frame in the timespan's second half")
        elif t < positive[0]:
            problems.append(f"turn {i}: the reply comes before the frame it should follow")
    if item.get("proactive") is True and not triggered:
        problems.append("a proactive item needs a triggered reply (with a timespan)")
    if item.get("proactive") is False and triggered:
        problems.append("an item that is not proactive has no triggered reply")
    return problems


def dataset_entry(path: str, video_folder: str, task: str) -> dict[str, Any]:
    """A ViSpeak dataset_config entry for one subtask's file."""
    return {"chat_path": path, "data_ratio": 1.0, **ROUTES[task], "video_folder_path": video_folder,
            "audio_folder_path": "", "image_folder_path": ""}  # fmt: skip


def write_vispeak(run: RunDir, folder: str, cfg: VispeakConfig) -> dict[str, Any]:
    """exports/vispeak/<subtask>.json from the kept rows of `folder`, streamed, and
    dataset_config.json registering them; returns the counts and the entries."""
    media = run.storage.child("media")
    video_folder = str(media.local_path()) if media.is_local else media.uri()
    tasks: dict[str, int] = dict.fromkeys(ROUTES, 0)
    clips = virtual = 0
    with contextlib.ExitStack() as stack:
        writers = {
            task: JsonListWriter(
                stack.enter_context(run.storage.open_output(f"exports/vispeak/{task}.json")),
                f"vispeak/{task}.json", check=lambda item: check_item(item, cfg),
            )
            for task in ROUTES
        }  # fmt: skip
        for unit in sorted(run.units(folder)):
            for clip in run.read_unit(folder, unit).to_pylist():
                if not clip["kept"] or not clip.get("events"):
                    continue
                if not clip.get("clip_path"):
                    virtual += 1
                    continue
                video = clip["clip_path"].removeprefix(media.uri() + "/")
                items = items_for(clip, cfg, video)
                clips += bool(items)
                for item in items:
                    writers[item["task"]].add(item)  # checked before it is written
                    tasks[item["task"]] += 1
        for writer in writers.values():
            writer.close()
    entries = {task: dataset_entry(run.uri(f"exports/vispeak/{task}.json"), video_folder, task)
               for task in ROUTES}  # fmt: skip
    run.storage.write_bytes(
        "exports/vispeak/dataset_config.json", json.dumps(entries, indent=1).encode()
    )
    return {"items": sum(tasks.values()), "clips": clips, "tasks": tasks, "entries": entries,
            "virtual_clips_left_out": virtual}  # fmt: skip
