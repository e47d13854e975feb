"""Tiny random-weight components of the omni model, built in-process: nothing is downloaded.

`build_tiny_components(folder)` writes four Hugging Face folders that `model.sizes.omni_tiny`
points at: `siglip/` (vision tower, 84 px, patch 14 → a 6×6 grid), `qwen2/` (LLM, hidden 64,
with a byte-level BPE tokenizer trained here that knows the omni placeholders), `whisper/`
(encoder, 16 mel bins, 1-s windows, with its feature extractor) and `bert/` (gate text encoder,
hidden 32, with a WordPiece tokenizer trained here). They exercise every code path of the real
model at a size that trains on a CPU in seconds; their output means nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
from pathlib import Path

from model.config import SPECIAL_TOKENS

_BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_GATE_CORPUS = [
    "what emotion does the person show",
    "describe the face and expression of the person",
    "what is the person wearing and doing",
    "describe the body pose and clothing",
    "how does the person interact with the objects around",
    "describe the video in detail",
    "what is said in the audio",
    "answer with the letter of the correct option",
] * 10


def _qwen_tokenizer():
    from curation.tiny_models import build_tokenizer

    tokenizer = build_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS}, False)
    return tokenizer


def _bert_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        _GATE_CORPUS, trainers.WordPieceTrainer(vocab_size=300, special_tokens=_BERT_SPECIALS)
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def build_tiny_components(folder: str | Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        BertConfig,
        BertModel,
        Qwen2Config,
        Qwen2ForCausalLM,
        SiglipVisionConfig,
        SiglipVisionModel,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperModel,
    )

    folder = Path(folder)
    torch.manual_seed(seed)

    vision = SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=84,
        patch_size=14,
    )
    SiglipVisionModel(vision).save_pretrained(folder / "siglip")

    tokenizer = _qwen_tokenizer()
    end, pad = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    llm = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            tie_word_embeddings=False,
            eos_token_id=end,
            pad_token_id=pad,
        )
    )
    llm.generation_config.eos_token_id = end
    llm.generation_config.pad_token_id = pad
    llm.save_pretrained(folder / "qwen2")
    tokenizer.save_pretrained(folder / "qwen2")

    # 16 mel bins and 1-s windows: 100 feature frames → 50 encoder positions → 16 audio tokens.
    whisper = WhisperConfig(
        vocab_size=64,
        num_mel_bins=16,
        d_model=32,
        encoder_layers=2,
        encoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=64,
        max_source_positions=50,
        max_target_positions=32,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    WhisperModel(whisper).save_pretrained(folder / "whisper")
    WhisperFeatureExtractor(feature_size=16, chunk_length=1).save_pretrained(folder / "whisper")

    bert_tokenizer = _bert_tokenizer()
    bert = BertConfig(
        vocab_size=len(bert_tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(bert, add_pooling_layer=False).save_pretrained(folder / "bert")
    bert_tokenizer.save_pretrained(folder / "bert")
    return folder


def ensure_tiny_components(folder: str | Path) -> Path:
    """Build the tiny components once; concurrent callers (test workers) wait for the first."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = folder.parent / f".{folder.name}.lock"
    with open(lock, "w") as fh, contextlib.ExitStack() as stack:
        fcntl.flock(fh, fcntl.LOCK_EX)
        stack.callback(fcntl.flock, fh, fcntl.LOCK_UN)
        if not (folder / "bert" / "tokenizer.json").is_file():
            build_tiny_components(folder)
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="models/tiny/omni", help="folder to write into")
    print(build_tiny_components(parser.parse_args(argv).out))


if __name__ == "__main__":
    main()
