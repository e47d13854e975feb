"""The training dataset and its collate function.

A sample that cannot be loaded is never replaced by another one (the released code silently
swaps in a random sample, changing the data distribution): with on_error="fail" the error
names the sample and the reason; with "skip" a `Skipped` marker travels to `collate`, which
drops it from the batch and lists it under `skipped` for the trainer to count.

Every sample has at most one video and at most one audio (each one placeholder in its first
turn), so the batch's videos in sample order are also their `<video>` tokens' order in
`input_ids` read row by row, which is how the model splices them in; the same holds for audio.
Audio-only samples carry no video at all, not a dummy zero clip.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import torch
from torch.utils.data import Dataset

from model.data.errors import SampleError, missing
from model.data.processor import OmniProcessor
from model.data.records import Record
from model.splice import IGNORE_INDEX

log = logging.getLogger(__name__)


@dataclass
class Sample:
    sample_id: str
    input_ids: torch.Tensor  # (L,) long
    labels: torch.Tensor  # (L,) long, IGNORE_INDEX where not supervised
    pixel_values: torch.Tensor | None  # (T, 3, S, S) float32
    audio_features: torch.Tensor | None  # (n_mels, frames) float32
    gate_input_ids: torch.Tensor | None  # (Lg,) long; with the video only
    face_pixel_values: torch.Tensor | None = None  # (T, 3, S, S): face crops of the frames


@dataclass(frozen=True)
class Skipped:
    sample_id: str
    reason: str
    detail: str = ""


def _exists(path: str) -> bool:
    return "://" in path or os.path.exists(path)


class OmniDataset(Dataset):
    def __init__(
        self,
        records: Sequence[Record],
        processor: OmniProcessor,
        max_text_tokens: int = 2048,
        on_error: Literal["skip", "fail"] = "skip",
        face_crops: bool = False,
    ):
        if on_error not in ("skip", "fail"):
            raise ValueError(f"on_error must be 'skip' or 'fail', got {on_error!r}")
        self.records = list(records)
        self.processor = processor
        self.max_text_tokens = max_text_tokens
        self.on_error = on_error
        # The face branch sees crops of the record's face_track where it has one.
        self.face_crops = face_crops

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Sample | Skipped:
        record = self.records[index]
        try:
            return self.load(record)
        except SampleError as exc:
            if self.on_error == "fail":
                raise exc.for_sample(record.id) from None
            log.warning("skipping sample %s: %s: %s", record.id, exc.reason, exc.detail)
            return Skipped(record.id, exc.reason, exc.detail)

    def load(self, record: Record) -> Sample:
        """One sample's tensors; raises SampleError. Text first: it is cheap and may fail."""
        p = self.processor
        text = p.tokenize(record.conversations, self.max_text_tokens)
        ids = torch.tensor(text.input_ids, dtype=torch.long)
        n_video = int((ids == p.video_token_id).sum())
        n_audio = int((ids == p.audio_token_id).sum())
        if n_video != (record.video is not None) or n_audio != record.use_audio:
            raise SampleError(
                "placeholder_mismatch",
                f"{n_video} <video> and {n_audio} <audio> tokens for video={record.video!r}, "
                f"audio={record.audio_source!r}",
            )
        pixel_values = gate = features = faces = None
        if record.video is not None:
            if not _exists(record.video):
                raise missing("missing_video", record.video)
            if self.face_crops and record.face_track:
                pixel_values, faces = p.video_and_faces(record.video, record.face_track)
            else:
                pixel_values = p.video(record.video)
            gate = torch.tensor(p.gate_ids(record.conversations), dtype=torch.long)
        source = record.audio_source
        if source is not None:
            if not _exists(source):
                raise missing("missing_audio", source)
            features = p.audio(source)
        return Sample(
            record.id,
            ids,
            torch.tensor(text.labels, dtype=torch.long),
            pixel_values,
            features,
            gate,
            faces,
        )

    @property
    def collate_fn(self) -> Any:
        """`collate` bound to this processor's pad ids (picklable, for DataLoader)."""
        return partial(
            collate, pad_id=self.processor.pad_id, gate_pad_id=self.processor.gate_pad_id
        )


def _pad(rows: list[torch.Tensor], value: int) -> torch.Tensor:
    out = torch.full((len(rows), max((len(r) for r in rows), default=0)), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _mask(rows: list[torch.Tensor]) -> torch.Tensor:
    return _pad([torch.ones(len(r), dtype=torch.long) for r in rows], 0)


def collate(items: Sequence[Sample | Skipped], pad_id: int, gate_pad_id: int = 0) -> dict[str, Any]:
    """A batch. Keys (B samples after skipping, Nv videos, Na audios, all right-padded):

    input_ids (B, L) long, pad_id-padded; attention_mask (B, L) long; labels (B, L) long,
    IGNORE_INDEX-padded; pixel_values (Nv, T, 3, S, S) float or None; face_pixel_values
    (Nv, T, 3, S, S) float or None (face crops, full frames for a video without); audio_features
    (Na, n_mels, frames) float or None; gate_input_ids / gate_attention_mask (Nv, Lg) long or
    None; sample_ids list[str] (B); skipped list[(id, reason)]; empty bool.

    When every item was skipped, `empty` is True, the text tensors are (0, 0) and the media
    None: the trainer still steps (its collective calls must match the other workers').
    """
    samples = [s for s in items if isinstance(s, Sample)]
    skipped = [(s.sample_id, s.reason) for s in items if isinstance(s, Skipped)]
    unknown = [type(s).__name__ for s in items if not isinstance(s, (Sample, Skipped))]
    if unknown:
        raise TypeError(f"collate expects Sample or Skipped items, got {unknown}")
    ids = [s.input_ids for s in samples]
    videos = [s for s in samples if s.pixel_values is not None]
    audios = [s.audio_features for s in samples if s.audio_features is not None]
    gates = [s.gate_input_ids for s in videos]
    # With crops for some videos, the others' face branch sees their full frames.
    crops = any(s.face_pixel_values is not None for s in videos)
    faces = [s.face_pixel_values if s.face_pixel_values is not None else s.pixel_values
             for s in videos]  # fmt: skip
    return {
        "input_ids": _pad(ids, pad_id),
        "attention_mask": _mask(ids),
        "labels": _pad([s.labels for s in samples], IGNORE_INDEX),
        "pixel_values": torch.stack([s.pixel_values for s in videos]) if videos else None,
        "face_pixel_values": torch.stack(faces) if crops else None,
        "audio_features": torch.stack(audios) if audios else None,
        "gate_input_ids": _pad(gates, gate_pad_id) if videos else None,
        "gate_attention_mask": _mask(gates) if videos else None,
        "sample_ids": [s.sample_id for s in samples],
        "skipped": skipped,
        "empty": not samples,
    }
