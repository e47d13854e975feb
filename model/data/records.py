"""Training records from curation's outputs and from audio-text data, as plain dataclasses.

Sources (a file, a folder of Parquet files, or a glob):
- HumanOmni JSON (`exports/<branch>.json`, a list) or JSONL: `{"id", "video" and/or "audio",
  "conversations", "branch"}`, checked with curation's own format check;
- curation's instruction Parquet (`instructions/<branch>/part-*.parquet`, one row per pair):
  rows grouped by (clip_id, branch) in `turn` order, through curation's exporter function, so
  they become exactly the samples `exports/<branch>.json` holds; rows without a clip file
  (virtual clips) are skipped and counted;
- audio-text Parquet (columns `audio`, `text`, optional `instruction` and `id`) for stage 2.
Relative media paths resolve against `media_root` when given, else the data file's folder.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from curation.instructions.exports import AUDIO_TAG, VIDEO_TAG, check_sample, sample
from model.config import AUDIO_TOKEN, VIDEO_TOKEN
from model.data.conversation import drop_audio
from model.data.errors import RecordError

log = logging.getLogger(__name__)

DEFAULT_AUDIO_INSTRUCTION = "Describe the audio."
NOAUDIO_SUFFIX = "#noaudio"
_PAIR_COLUMNS = {"clip_id", "branch", "turn", "question", "answer", "video", "has_audio"}


@dataclass(frozen=True)
class Record:
    id: str
    video: str | None  # clip file, or None for audio-only samples
    audio: str | None  # a separate audio file (audio-text data); None: none, or the clip's own
    use_audio: bool  # the first human turn has <audio>: the audio comes from `audio_source`
    conversations: list[dict[str, str]]
    branch: str | None = None
    # [t_s, nx1, ny1, nx2, ny2] per sampled frame of the clip's largest face (exports'
    # face_track); empty when the export has none
    face_track: tuple[tuple[float, ...], ...] = ()

    @property
    def audio_source(self) -> str | None:
        """The file whose first audio stream is heard: `audio`, else the clip's own track."""
        if not self.use_audio:
            return None
        return self.audio or self.video


def _resolve(value: str, base: Path, media_root: str | Path | None) -> str:
    if "://" in value or Path(value).is_absolute():
        return value
    return str(Path(media_root if media_root is not None else base) / value)


def _with_audio_tag(turns: list[dict[str, str]]) -> None:
    """Audio records whose first turn lacks `<audio>` get it, after the `<video>` line."""
    first = turns[0]["value"]
    if AUDIO_TOKEN in first:
        return
    if first.startswith(VIDEO_TAG):
        turns[0]["value"] = VIDEO_TAG + AUDIO_TAG + first[len(VIDEO_TAG) :]
    else:
        turns[0]["value"] = AUDIO_TAG + first


def record_from_item(
    item: Any,
    where: str,
    base: Path,
    default_id: str,
    *,
    media_root: str | Path | None = None,
    default_audio_instruction: str = DEFAULT_AUDIO_INSTRUCTION,
) -> Record:
    """One JSON sample → Record; `where` ("file: record 3") prefixes every error."""
    if not isinstance(item, dict):
        raise RecordError(f"{where}: not an object")
    if "image" in item:
        raise RecordError(f"{where}: image samples are not supported by this trainer")
    item = dict(item)
    if "conversations" not in item and isinstance(item.get("text"), str):
        instruction = item.get("instruction") or default_audio_instruction
        item["conversations"] = [
            {"from": "human", "value": instruction},
            {"from": "gpt", "value": item["text"]},
        ]
    turns = item.get("conversations")
    if isinstance(turns, list):
        item["conversations"] = turns = [
            {"from": t.get("from"), "value": t.get("value")} if isinstance(t, dict) else t
            for t in turns
        ]
    problems = check_sample(item)
    if not problems and item.get("audio"):
        _with_audio_tag(turns)
    if not problems:
        first = turns[0]["value"]
        if first.count(VIDEO_TOKEN) != (1 if item.get("video") else 0):
            problems.append("the first human turn needs one <video> exactly when there is a video")
        if first.count(AUDIO_TOKEN) > 1:
            problems.append("more than one <audio> tag")
    if problems:
        raise RecordError(f"{where}: {'; '.join(problems)}")
    video, audio = item.get("video"), item.get("audio")
    return Record(
        id=str(item["id"]) if item.get("id") is not None else default_id,
        video=_resolve(video, base, media_root) if video else None,
        audio=_resolve(audio, base, media_root) if audio else None,
        use_audio=AUDIO_TOKEN in turns[0]["value"],
        conversations=turns,
        branch=item.get("branch") or (None if video else "audio"),
        face_track=_face_track(item.get("face_track"), where),
    )


def _face_track(value: Any, where: str) -> tuple[tuple[float, ...], ...]:
    if value is None:
        return ()
    ok = isinstance(value, list) and all(
        isinstance(e, list) and len(e) == 5 and all(isinstance(x, (int, float)) for x in e)
        for e in value
    )
    if not ok:
        raise RecordError(f"{where}: face_track must be a list of [t_s, nx1, ny1, nx2, ny2]")
    return tuple(tuple(float(x) for x in e) for e in value)


def _files(source: Path) -> list[Path]:
    if glob.has_magic(str(source)):
        files = sorted(Path(p) for p in glob.glob(str(source), recursive=True))
    elif source.is_dir():
        # Hidden names are half-written temporaries of curation's atomic writes.
        files = sorted(p for p in source.rglob("*.parquet") if not p.name.startswith("."))
    elif source.is_file():
        files = [source]
    else:
        raise FileNotFoundError(f"training data {source} not found")
    if not files:
        raise FileNotFoundError(f"training data {source}: no data files found")
    return files


def _json_items(path: Path) -> list[tuple[str, str, Any]]:
    text = path.read_text()
    if path.suffix == ".jsonl":
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append((f"{path}: line {n}", f"{path.stem}-{n}", json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise RecordError(f"{path}: line {n}: not JSON ({exc})") from None
        return items
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, list):
        raise RecordError(f"{path}: the top level must be a list of samples")
    return [(f"{path}: record {i}", f"{path.stem}-{i}", item) for i, item in enumerate(data)]


def _parquet_items(
    path: Path, groups: dict[tuple[str, str], list[dict[str, Any]]], counts: Counter
) -> list[tuple[str, str, Any]]:
    """Audio-text rows become items now; instruction pairs are grouped into `groups`, since a
    clip's pairs may span files."""
    table = pq.read_table(path)
    columns = set(table.column_names)
    rows = table.to_pylist()
    if _PAIR_COLUMNS.issubset(columns):
        for i, row in enumerate(rows):
            if not row["video"]:
                counts["pairs_without_video"] += 1  # a virtual clip: no file to train on
                continue
            if row["clip_id"] is None or row["turn"] is None:
                raise RecordError(f"{path}: row {i}: clip_id and turn must be set")
            groups.setdefault((row["clip_id"], row["branch"]), []).append({**row, "_path": path})
        return []
    if {"audio", "text"} <= columns:
        items = []
        for i, row in enumerate(rows):
            item = {k: row[k] for k in ("audio", "text", "instruction", "id") if row.get(k)}
            item["branch"] = row.get("branch") or "audio"
            items.append((f"{path}: row {i}", f"{path.stem}-{i}", item))
        return items
    raise RecordError(
        f"{path}: neither instruction pairs (columns {sorted(_PAIR_COLUMNS)}) nor audio-text "
        f"data (columns audio, text); found {sorted(columns)}"
    )


def load_records(
    sources: str | Path | list[str | Path],
    *,
    media_root: str | Path | None = None,
    default_audio_instruction: str = DEFAULT_AUDIO_INSTRUCTION,
    counts: Counter | None = None,
) -> list[Record]:
    """All records of one or more sources, in file order (grouped Parquet pairs last). Ids
    must be unique. Rows left out are logged and, when `counts` is given, counted in it."""
    paths = [Path(s) for s in ([sources] if isinstance(sources, (str, Path)) else sources)]
    found: list[tuple[str, Path, str, Any]] = []  # (where, base folder, default id, item)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    skipped: Counter = Counter()
    for source in paths:
        for path in _files(source):
            if path.suffix in (".json", ".jsonl"):
                items = _json_items(path)
            elif path.suffix == ".parquet":
                items = _parquet_items(path, groups, skipped)
            else:
                raise RecordError(f"{path}: unknown data file type (.json, .jsonl or .parquet)")
            found += [(where, path.parent, default, item) for where, default, item in items]
    for (clip_id, branch), rows in groups.items():
        # The exporter's own grouping: turn order, first row's video and audio flag.
        rows.sort(key=lambda r: r["turn"])
        pairs = [(r["question"], r["answer"]) for r in rows]
        sample_id = f"{clip_id}-{branch}"
        item = sample(sample_id, rows[0]["video"], rows[0]["has_audio"], branch, pairs)
        path = rows[0]["_path"]
        found.append((f"{path}: clip {clip_id} ({branch})", path.parent, sample_id, item))
    records: list[Record] = []
    seen: dict[str, str] = {}
    for where, base, default_id, item in found:
        record = record_from_item(
            item,
            where,
            base,
            default_id,
            media_root=media_root,
            default_audio_instruction=default_audio_instruction,
        )
        if record.id in seen:
            raise RecordError(
                f"{where}: duplicate sample id {record.id!r} (also {seen[record.id]})"
            )
        seen[record.id] = where
        records.append(record)
    for reason, n in skipped.items():
        log.warning("%s: skipped %d instruction rows (%s)", ", ".join(map(str, paths)), n, reason)
    if counts is not None:
        counts.update(skipped)
    return records


def with_audio_dropped(records: list[Record], rate: float = 1.0, seed: int = 0) -> list[Record]:
    """Stage 3's audio ablation: a `rate` fraction of the video records with audio (1.0: all,
    the paper's setting) gets a copy without audio, id suffixed `#noaudio`, right after it.

    The chosen records are the first by a seeded hash of their id: the same set whatever the
    order of the input, and exactly round(rate · eligible) of them.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be within [0, 1], got {rate}")
    eligible = [r.id for r in records if r.video is not None and r.use_audio]
    ranked = sorted(eligible, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    chosen = set(ranked[: round(rate * len(eligible))])
    out: list[Record] = []
    for record in records:
        out.append(record)
        if record.id in chosen:
            out.append(
                replace(
                    record,
                    id=record.id + NOAUDIO_SUFFIX,
                    audio=None,
                    use_audio=False,
                    conversations=drop_audio(record.conversations),
                )
            )
    return out
