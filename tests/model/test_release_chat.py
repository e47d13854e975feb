"""Compat "humanomni": the release's prompt layout, tokens, labels and frame positions."""

from __future__ import annotations

import numpy as np
import pytest
from release_fixture import QWEN_SYSTEM, release_tokenizer

from model.data.frames import uniform_frame_indices
from model.data.processor import OmniProcessor, with_omni_tokens
from model.splice import IGNORE_INDEX

SYSTEM = f"<|im_start|>system\n{QWEN_SYSTEM}<|im_end|>\n"


@pytest.fixture(scope="module")
def processor(tiny_dir):
    from transformers import AutoTokenizer, WhisperFeatureExtractor

    return OmniProcessor(
        with_omni_tokens(release_tokenizer(), "humanomni"),
        AutoTokenizer.from_pretrained(tiny_dir / "bert"),
        WhisperFeatureExtractor.from_pretrained(tiny_dir / "whisper"),
        image_size=84,
        num_frames=8,
        gate_max_tokens=512,
        system_prompt=None,
        compat="humanomni",
    )


def _supervised(processor, out) -> str:
    pairs = zip(out.input_ids, out.labels, strict=True)
    return processor.decode([i for i, label in pairs if label != IGNORE_INDEX])


def test_training_text_moves_the_tags_as_the_release_does(processor):
    conversation = [
        {"from": "human", "value": "<video>\n<audio>\nWhat is said?"},
        {"from": "gpt", "value": "Hello there."},
    ]
    out = processor.tokenize(conversation)
    assert processor.decode(out.input_ids) == (
        SYSTEM + "<|im_start|>user\n<vi_start><video><vi_end>\n<au_start><audio><au_end>\n\n\n"
        "What is said?<|im_end|>\n<|im_start|>assistant\nHello there.<|im_end|>\n"
    )
    # The reply, its <|im_end|> and the newline after it are supervised.
    assert _supervised(processor, out) == "Hello there.<|im_end|>\n"
    assert out.input_ids.count(processor.video_token_id) == 1
    assert out.input_ids.count(processor.audio_token_id) == 1
    # The markers are plain text: several ordinary tokens each, no new embedding rows.
    assert len(processor.tokenizer("<vi_start>", add_special_tokens=False)["input_ids"]) > 1


def test_every_reply_of_a_multi_turn_conversation_is_supervised(processor):
    conversation = [
        {"from": "human", "value": "Describe the face.\n<video>"},
        {"from": "gpt", "value": "A smile."},
        {"from": "human", "value": "And the eyes?"},
        {"from": "gpt", "value": "Closed."},
    ]
    out = processor.tokenize(conversation)
    text = processor.decode(out.input_ids)
    assert text.startswith(
        SYSTEM + "<|im_start|>user\n<vi_start><video><vi_end>\nDescribe the face."
    )
    assert _supervised(processor, out) == "A smile.<|im_end|>\nClosed.<|im_end|>\n"


def test_inference_prompt_is_the_releases(processor):
    ids = processor.prompt_ids("<video>\n<audio>\nWhat is said?")
    assert processor.decode(ids) == (
        SYSTEM + "<|im_start|>user\n<vi_start><video><vi_end>\n<au_start><audio><au_end>\n"
        "What is said?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_a_given_system_prompt_replaces_the_templates_default(processor, tiny_dir):
    other = OmniProcessor(
        processor.tokenizer, processor.gate_tokenizer, processor.feature_extractor,
        image_size=84, num_frames=8, gate_max_tokens=512, system_prompt="Be brief.",
        compat="humanomni",
    )  # fmt: skip
    assert processor.decode(other.prompt_ids("Hi")).startswith(
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi"
    )


def test_gate_reads_up_to_bert_limit(processor):
    assert len(processor.gate_ids("word " * 700)) == 512


def test_a_project_tokenizer_is_refused_under_the_release_rules(tiny_dir):
    from transformers import AutoTokenizer

    from model.data.processor import check_tokenizer

    project = AutoTokenizer.from_pretrained(tiny_dir / "qwen2")  # markers are tokens there
    with pytest.raises(ValueError, match="plain text"):
        check_tokenizer(project, "qwen2", "humanomni")


@pytest.mark.parametrize("num_frames", [8, 32])
def test_frame_positions_are_the_releases_for_every_length(num_frames):
    for n in range(1, 3001):
        seg = (n - 1) / num_frames
        release = np.round(seg * (np.arange(num_frames) + 0.5) + 1e-6).astype(int).tolist()
        assert uniform_frame_indices(n, num_frames) == release, n
    # 33 frames at 32: every frame but one, none twice (half to even would repeat one).
    assert len(set(uniform_frame_indices(33, 32))) == 32
