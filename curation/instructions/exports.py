"""HumanOmni's training format: what `make instructions` exports and the trainer reads.

One sample per clip and branch: `{"id", "video", "conversations", "branch"}` where
`conversations` alternates `{"from": "human"}` and `{"from": "gpt"}` turns, and the first
human turn starts with `<video>\n`, then `<audio>\n` when the clip has sound. Audio-text
records for the audio stage (`audio_text.json`) are `{"id", "audio", "conversations"}` with
the first human turn starting `<audio>\n`: a clip's speech and its transcript. `check_sample`
is the format check every exported file passes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

VIDEO_TAG, AUDIO_TAG = "<video>\n", "<audio>\n"


def sample(
    sample_id: str,
    video: str,
    has_audio: bool,
    branch: str,
    pairs: list[tuple[str, str]],
    face_track: list[list[float]] | None = None,
) -> dict[str, Any]:
    """One training sample; `face_track` (the clip's faces over time, `largest_face_track`)
    lets a trainer crop the face branch's frames (the release's reader ignores the key)."""
    turns = []
    for i, (question, answer) in enumerate(pairs):
        prefix = (VIDEO_TAG + (AUDIO_TAG if has_audio else "")) if i == 0 else ""
        turns += [{"from": "human", "value": prefix + question}, {"from": "gpt", "value": answer}]
    item = {"id": sample_id, "video": video, "conversations": turns, "branch": branch}
    if face_track:
        item["face_track"] = face_track
    return item


def largest_face_track(boxes: Sequence[dict] | None) -> list[list[float]]:
    """`[t_s, nx1, ny1, nx2, ny2]` of the largest face of every sampled frame that has one,
    in time order (what an export's `face_track` holds)."""
    best: dict[int, dict] = {}
    for b in boxes or []:
        if b.get("cls") != "face" or b.get("nx1") is None:
            continue
        area = (b["nx2"] - b["nx1"]) * (b["ny2"] - b["ny1"])
        held = best.get(b["frame"])
        if held is None or area > (held["nx2"] - held["nx1"]) * (held["ny2"] - held["ny1"]):
            best[b["frame"]] = b
    rows = sorted(best.values(), key=lambda b: b["t_s"])
    return [[round(float(b[k]), 4) for k in ("t_s", "nx1", "ny1", "nx2", "ny2")] for b in rows]


ASR_QUESTION = "Transcribe the speech."


def audio_text_sample(clip_id: str, audio: str, transcript: str) -> dict[str, Any]:
    """A speech-recognition record for the audio stage: the clip's sound → its transcript."""
    turns = [
        {"from": "human", "value": AUDIO_TAG + ASR_QUESTION},
        {"from": "gpt", "value": transcript.strip()},
    ]
    return {"id": f"{clip_id}-asr", "audio": audio, "conversations": turns}


def check_sample(item: Any) -> list[str]:
    """What is wrong with one exported sample (empty when it is well formed)."""
    if not isinstance(item, dict):
        return ["not an object"]
    problems = []
    media = [k for k in ("video", "image", "audio") if k in item]
    if not media or not all(isinstance(item[k], str) and item[k] for k in media):
        problems.append("needs a non-empty video, image or audio path")
    turns = item.get("conversations")
    if not isinstance(turns, list) or not turns or len(turns) % 2:
        return [*problems, "conversations must be a non-empty list of human/gpt pairs"]
    for i, turn in enumerate(turns):
        role = "human" if i % 2 == 0 else "gpt"
        if not isinstance(turn, dict) or turn.get("from") != role:
            problems.append(f"turn {i} must be from {role}")
        elif not isinstance(turn.get("value"), str) or not turn["value"].strip():
            problems.append(f"turn {i} has no text")
    if problems:
        return problems
    first = turns[0]["value"]
    if "video" in item and not first.startswith(VIDEO_TAG):
        problems.append("the first human turn must start with <video>\\n")
    for i, turn in enumerate(turns[1:], 1):
        if VIDEO_TAG.strip() in turn["value"] or AUDIO_TAG.strip() in turn["value"]:
            problems.append(f"turn {i}: media tags belong in the first human turn only")
    return problems


class JsonListWriter:
    """Writes a JSON list one checked sample at a time, so an export of millions of clips
    never sits in memory; every sample passes `check_sample` (or `check`) before it is
    written."""

    def __init__(self, fh: BinaryIO, name: str, check: Callable[[Any], list[str]] | None = None):
        self.fh, self.name, self.count = fh, name, 0
        self.check = check or check_sample  # another format's check (ViSpeak's) where given
        fh.write(b"[")

    def add(self, item: dict[str, Any]) -> None:
        problems = self.check(item)
        if problems:
            raise ValueError(f"export {self.name}: malformed sample {item.get('id')}: {problems}")
        text = (",\n" if self.count else "\n") + json.dumps(item, ensure_ascii=False)
        self.fh.write(text.encode())
        self.count += 1

    def close(self) -> None:
        self.fh.write(b"\n]\n")


def write_export(path: Path, samples: list[dict[str, Any]]) -> None:
    """A list of samples as one local export file (checked, written atomically)."""
    from curation.storage import Storage

    target = Path(path).absolute()
    with Storage.open(target.parent).open_output(target.name) as fh:
        writer = JsonListWriter(fh, target.name)
        for item in samples:
            writer.add(item)
        writer.close()


def check_export(path: Path) -> list[str]:
    """Problems in an export file, one line each (used by tests and after every export)."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, list):
        return ["the top level must be a list of samples"]
    return [f"{i}: {p}" for i, item in enumerate(data) for p in check_sample(item)]
