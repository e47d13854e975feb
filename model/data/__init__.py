"""The trainer's data side: records from curation's exports, frames, audio, chat tokens, batches.

One `OmniProcessor` turns a conversation and its media into model inputs for training and for
inference alike, so the two never see differently prepared data (a defect of the released code).
"""

from model.data.conversation import IGNORE_INDEX, drop_audio, gate_text
from model.data.dataset import OmniDataset, Sample, Skipped, collate
from model.data.errors import RecordError, SampleError
from model.data.processor import OmniProcessor
from model.data.records import Record, load_records, with_audio_dropped

__all__ = [
    "IGNORE_INDEX",
    "OmniDataset",
    "OmniProcessor",
    "Record",
    "RecordError",
    "Sample",
    "SampleError",
    "Skipped",
    "collate",
    "drop_audio",
    "gate_text",
    "load_records",
    "with_audio_dropped",
]
