"""Tiny random-weight models for tests and the offline profile: nothing is downloaded.

`build_tiny_models(folder)` writes two Hugging Face model folders:
- `qwen2-vl/`: a Qwen2-VL vision-language model (hidden size 64, 2 layers, a 2-layer vision
  tower) with its image/video processors;
- `qwen2/`: a Qwen2 text model of the same size;
both sharing a byte-level BPE tokenizer trained here, in-process, on a small caption corpus,
with the Qwen chat markers and a chat template of our own. Their output is random text: they
exercise every code path of the real models (chat template, vision tokens, generation) and
nothing else. The offline profile says so loudly.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# A chat template in the Qwen format: <|im_start|>role\n...<|im_end|>, images and videos as
# <|vision_start|><|image_pad|><|vision_end|>. Content may be a string or a list of parts.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' or 'video' in part %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_WORDS = {
    "who": ["a woman", "a man", "two people", "a child", "an old man", "a group of friends"],
    "does": [
        "is walking",
        "is talking",
        "is smiling",
        "is dancing",
        "is cooking",
        "sits and reads",
    ],
    "where": [
        "in a kitchen",
        "on a street",
        "in a park",
        "on a stage",
        "in an office",
        "at a beach",
    ],
}


def _corpus() -> list[str]:
    lines = [" ".join(p) + "." for p in itertools.product(*_WORDS.values())]
    return lines + ['{"face": {"expression": "smiling"}, "body": {"action": "walking"}}'] * 20


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_corpus(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _text_config(vocab_size: int) -> dict:
    return {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": True,
    }


def build_tiny_models(folder: str | Path, seed: int = 0) -> dict[str, Path]:
    import torch
    from transformers import (
        Qwen2Config,
        Qwen2ForCausalLM,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    folder = Path(folder)
    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text = _text_config(len(tokenizer))

    lm_dir = folder / "qwen2"
    lm = Qwen2ForCausalLM(
        Qwen2Config(**text, eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    )
    lm.generation_config.eos_token_id = ids["<|im_end|>"]
    lm.save_pretrained(lm_dir)
    tokenizer.save_pretrained(lm_dir)

    vl_dir = folder / "qwen2-vl"
    config = Qwen2VLConfig(
        text_config={
            **text,
            "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3]},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 64,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.save_pretrained(vl_dir)
    pixels = {"min_pixels": 56 * 56, "max_pixels": 112 * 112}
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        video_processor=Qwen2VLVideoProcessor(**pixels),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(vl_dir)
    return {"qwen2-vl": vl_dir, "qwen2": lm_dir}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="models/tiny", help="folder to write the models into")
    args = parser.parse_args(argv)
    for name, path in build_tiny_models(args.out).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
