"""Benchmarks read from their own published layouts in a local folder (nothing is downloaded),
into the documents the tasks in `model/eval/tasks/` score.

    <data>/dfew/        EmoLabel_DataSplit/test(single-labeled)/set_<fold>.csv  (video_name,label 1-7)
                        and the clips anywhere below, named by video_name (5-digit zero-padded or not)
    <data>/mafw/        Train & Test Set/single/no_caption/set_<fold>/test.txt  ("<clip> <label name>")
                        and the clips anywhere below, by name
    <data>/humanvbench/ json/<category>.json (MVBench: video, question, candidates, answer)
                        and the videos anywhere below, by path under the folder or by file name
    <data>/asr/         LibriSpeech's layout: <id> <TRANSCRIPT> lines in *.trans.txt, the audio
                        file <id>.flac (or .wav, .mp3, .mp4, .m4a) beside each list
    <data>/dfec/        *.json: a list of {"video": ..., "caption": ... or "captions": [...]}
    <data>/vispeak/     annotations/<Subtask>.json (ViSpeak-Bench) and the videos by its paths

A malformed or unreadable label file, or a label outside the dataset's classes, is a
`LayoutError` naming the file and line: the whole set would be scored wrong. A sample whose
video is missing is a skipped row with its reason; the rest are scored.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.eval.labels import CLASSES, DFEW_LABELS, OFFICIAL_NAMES, VISPEAK_FILES

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v"}
AUDIO_SUFFIXES = (".flac", ".wav", ".mp3", ".mp4", ".m4a")


class LayoutError(ValueError):
    """A label file that cannot be read as its dataset's layout; names the file and line."""

    def __init__(self, path: Path, message: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


@dataclass
class Loaded:
    """The documents of one task, and the samples left out with their reasons."""

    docs: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def skip(self, source: str, reason: str, detail: str) -> None:
        self.skipped.append({"source": source, "reason": reason, "detail": detail})


def _index(folder: Path, suffixes: set[str]) -> dict[str, Path | None]:
    """File stem, name and path under `folder` → the file, for every media file below it; a
    stem or name that two files share maps to None (which one is meant cannot be told)."""
    found: dict[str, Path | None] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in suffixes and path.is_file():
            for key in (path.stem, path.name):
                found[key] = None if key in found and found[key] != path else path
            found[path.relative_to(folder).as_posix()] = path
    return found


def _lookup(
    out: Loaded, videos: dict[str, Path | None], name: str, source: str, root: Path
) -> Path | None:
    """The video a record names (by its path under the folder, or its file name), or None
    with the sample skipped and the reason."""
    for key in (name, Path(name).name):
        if key in videos:
            if videos[key] is None:
                out.skip(source, "ambiguous_video", f"several files named {key} under {root}")
            return videos[key]
    out.skip(source, "missing_video", f"no video {name} under {root}")
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LayoutError(path, f"cannot read: {exc}") from None


def _emotion(name: str, dataset: str, path: Path, line: int) -> str:
    word = OFFICIAL_NAMES.get(name.strip().lower(), name.strip().lower())
    if word not in CLASSES[dataset]:
        raise LayoutError(path, f"unknown label {name!r} (classes: {CLASSES[dataset]})", line)
    return word


def _clip(videos: dict[str, Path | None], name: str) -> Path | None:
    name = name.strip()
    stem = Path(name).stem
    return (
        videos.get(name)
        or videos.get(stem)
        or (videos.get(stem.zfill(5)) if stem.isdigit() else None)
    )


def read_dfew(root: Path, fold: int = 1) -> Loaded:
    labels = root / "EmoLabel_DataSplit" / "test(single-labeled)" / f"set_{fold}.csv"
    rows = list(csv.reader(_read(labels).splitlines()))
    if not rows or [c.strip() for c in rows[0][:2]] != ["video_name", "label"]:
        raise LayoutError(labels, "expected the header 'video_name,label'", 1)
    videos, out = _index(root, VIDEO_SUFFIXES), Loaded()
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) < 2 or not row[1].strip().isdigit() or int(row[1]) not in DFEW_LABELS:
            raise LayoutError(
                labels, f"expected video_name,label with a label 1-7, got {row}", line
            )
        name, source = row[0].strip(), f"{labels}:{line}"
        clip = _clip(videos, name)
        if clip is None:
            out.skip(source, "missing_video", f"no video named {name} under {root}")
            continue
        label = DFEW_LABELS[int(row[1])]
        out.docs.append(
            {"id": name, "video": str(clip), "label": label, "dataset": "dfew", "fold": fold}
        )
    return out


def read_mafw(root: Path, fold: int = 1) -> Loaded:
    labels = root / "Train & Test Set" / "single" / "no_caption" / f"set_{fold}" / "test.txt"
    videos, out = _index(root, VIDEO_SUFFIXES), Loaded()
    for line, text in enumerate(_read(labels).splitlines(), start=1):
        parts = text.replace(",", " ").split()
        if not parts:
            continue
        if len(parts) < 2:
            raise LayoutError(labels, f"expected '<clip> <label>', got {text!r}", line)
        name, source = parts[0], f"{labels}:{line}"
        label = _emotion(parts[-1], "mafw", labels, line)
        clip = _clip(videos, name)
        if clip is None:
            out.skip(source, "missing_video", f"no video named {name} under {root}")
            continue
        out.docs.append(
            {"id": name, "video": str(clip), "label": label, "dataset": "mafw", "fold": fold}
        )
    return out


def _json(path: Path) -> Any:
    try:
        return json.loads(_read(path))
    except json.JSONDecodeError as exc:
        raise LayoutError(path, f"not JSON: {exc.msg}", exc.lineno) from None


def _records(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict]]:
    """The list of objects in a JSON file, each with its position; a record without a required
    field names the file and the record."""
    data = _json(path)
    if not isinstance(data, list):
        raise LayoutError(path, "expected a JSON list of objects")
    for i, record in enumerate(data):
        missing = [k for k in required if not isinstance(record, dict) or k not in record]
        if missing:
            raise LayoutError(path, f"record {i} lacks {missing}")
    return list(enumerate(data))


def read_humanvbench(root: Path, fold: int = 1) -> Loaded:
    videos, out = _index(root, VIDEO_SUFFIXES), Loaded()
    for labels in sorted((root / "json").glob("*.json")):
        for i, record in _records(labels, ("video", "question", "candidates", "answer")):
            source = f"{labels}#{i}"
            if record["answer"] not in record["candidates"]:
                raise LayoutError(
                    labels, f"record {i}: answer {record['answer']!r} is not a candidate"
                )
            clip = _lookup(out, videos, record["video"], source, root)
            if clip is None:
                continue
            doc = {k: record[k] for k in ("question", "candidates", "answer")}
            out.docs.append(
                {"id": f"{labels.stem}/{i}", "video": str(clip), "category": labels.stem, **doc}
            )
    if not out.docs and not out.skipped:
        raise LayoutError(root / "json", "no MVBench-style <category>.json file")
    return out


def read_asr(root: Path, fold: int = 1) -> Loaded:
    out = Loaded()
    for labels in sorted(root.rglob("*.trans.txt")):
        for line, text in enumerate(_read(labels).splitlines(), start=1):
            if not text.strip():
                continue
            utterance, _, transcript = text.strip().partition(" ")
            if not transcript.strip():
                raise LayoutError(labels, f"expected '<id> <TRANSCRIPT>', got {text!r}", line)
            audio = next(
                (a for s in AUDIO_SUFFIXES if (a := labels.parent / f"{utterance}{s}").is_file()),
                None,
            )
            if audio is None:
                out.skip(
                    f"{labels}:{line}",
                    "missing_audio",
                    f"no {utterance}.flac/.wav/... beside the list",
                )
                continue
            out.docs.append(
                {"id": utterance, "audio": str(audio), "transcript": transcript.strip()}
            )
    if not out.docs and not out.skipped:
        raise LayoutError(root, "no LibriSpeech-style *.trans.txt list")
    return out


def read_dfec(root: Path, fold: int = 1) -> Loaded:
    videos, out = _index(root, VIDEO_SUFFIXES), Loaded()
    for labels in sorted(root.glob("*.json")):
        for i, record in _records(labels, ("video",)):
            captions = record.get("captions") or (
                [record["caption"]] if record.get("caption") else []
            )
            if not captions or not all(isinstance(c, str) and c.strip() for c in captions):
                raise LayoutError(labels, f"record {i} has no reference caption")
            clip = _lookup(out, videos, record["video"], f"{labels}#{i}", root)
            if clip is None:
                continue
            out.docs.append({"id": f"{labels.stem}/{i}", "video": str(clip), "captions": captions})
    return out


def read_vispeak(root: Path, fold: int = 1) -> Loaded:
    """One document per poll of each event (see vispeak.yaml)."""
    out = Loaded()
    for labels in sorted((root / "annotations").glob("*.json")):
        subtask = next(
            (t for prefix, t in VISPEAK_FILES.items() if labels.stem.startswith(prefix)), None
        )
        if subtask is None:  # Visual Reference: no timing to score
            continue
        for i, record in _records(labels, ("video", "conversations")):
            reply = record["conversations"][-1] if record["conversations"] else {}
            span = reply.get("timespan") or ([reply["time"]] * 2 if "time" in reply else None)
            if not span or len(span) != 2:
                raise LayoutError(labels, f"record {i}: its last turn has no timespan or time")
            video = root / record["video"]
            if not video.is_file():
                out.skip(f"{labels}#{i}", "missing_video", f"{video} does not exist")
                continue
            start_s = float(record.get("video_start_time") or 0.0)
            event = f"{labels.stem}/{i}"
            # At least one poll: an event ending before the first one is a late reply at best.
            for k in range(1, max(1, math.floor(float(span[1]) + 2 - start_s)) + 1):
                out.docs.append(
                    {
                        "id": f"{event}@{k}",
                        "event": event,
                        "subtask": subtask,
                        "video": str(video),
                        "video_start": start_s,
                        "t": start_s + k,
                        "start": float(span[0]),
                        "end": float(span[1]),
                    }
                )
    return out


def read_run_val(run: Path, fold: int = 1) -> Loaded:
    """A curated run's validation split (exports/val/<branch>.json, HumanOmni's format): one
    document per question, scored against its answer; the branch is kept for per-branch
    numbers. Clip paths are relative to the run folder."""
    out = Loaded()
    files = sorted(p for p in (run / "exports" / "val").glob("*.json")
                   if p.stem not in ("mixed", "audio_text"))  # fmt: skip
    if not files:
        raise LayoutError(run / "exports" / "val", "no validation exports: run make instructions")
    for labels in files:
        for i, record in _records(labels, ("video", "conversations")):
            video = (
                Path(record["video"])
                if Path(record["video"]).is_absolute()
                else run / record["video"]
            )
            if not video.is_file():
                out.skip(f"{labels}#{i}", "missing_video", f"{video} does not exist")
                continue
            turns = record["conversations"]
            if len(turns) < 2 or not all(isinstance(t, dict) and "value" in t for t in turns):
                raise LayoutError(labels, f"record {i}: expected human/gpt turns with values")
            has_audio = "<audio>" in turns[0]["value"]
            for k in range(0, len(turns) - 1, 2):
                question = turns[k]["value"].replace("<video>\n", "").replace("<audio>\n", "")
                out.docs.append(
                    {
                        "id": f"{record.get('id', i)}/{k // 2}",
                        "video": str(video),
                        "instruction": question.strip(),
                        "captions": [turns[k + 1]["value"]],
                        "branch": record.get("branch", labels.stem),
                        "modal": "video_audio" if has_audio else "video",
                        "face_track": record.get("face_track") or [],
                    }
                )
    return out


READERS: dict[str, Callable[[Path, int], Loaded]] = {
    "dfew": read_dfew,
    "mafw": read_mafw,
    "humanvbench": read_humanvbench,
    "asr": read_asr,
    "dfec": read_dfec,
    "vispeak": read_vispeak,
    "run_val": read_run_val,
}
