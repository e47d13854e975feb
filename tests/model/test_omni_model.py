"""The model's architecture against the reference facts, and its splicing of media blocks."""

from __future__ import annotations

import json

import pytest
import torch

from model import summary
from model.build import build_model, parameter_counts
from model.config import PARTS
from model.sizes import omni_7b, omni_small
from model.splice import IGNORE_INDEX, splice

# Reference parameter counts of the released 7B model (arithmetic from its shapes).
REFERENCE_7B = {
    "body_projector": 376.9e6,
    "interaction_projector": 376.9e6,
    "face_projector": 17.0e6,
    "gate": 2.77e6,
    "audio_projector": 17.4e6,
    "llm": 7.62e9,
    "total": 9.6e9,
}


def test_summary_7b_matches_reference_counts(capsys):
    assert summary.main(["--size", "7b", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert set(counts) == {*PARTS, "total"}
    for part, expected in REFERENCE_7B.items():
        assert counts[part] == pytest.approx(expected, rel=0.01), part
    assert counts["compressor"] == 0  # slow-fast pooling has no parameters
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")


def test_7b_shapes_on_meta_device():
    with torch.device("meta"):
        model = build_model(omni_7b(), pretrained=False)
        frames = model.vision(torch.empty(1, 2, 3, 384, 384))
        assert frames.shape == (1, 2, 729, 1152)  # 27×27 patches, penultimate layer
        features = torch.empty(1, 32, 729, 1152)
        body = model.body_projector(features)
        face = model.face_projector(features)
        assert body.shape == face.shape == (1, 32, 196, 3584)  # branches align: 14×14 a frame
        assert model.compressor(body).shape == (1, 3136, 3584)  # 32·49 fast + 8·196 slow
        audio = model.audio_encoder(torch.empty(1, 128, 3000))
        assert audio.shape == (1, 500, 1280)
        assert model.audio_projector(audio).shape == (1, 500, 3584)
    stc = model.body_projector
    assert stc.sampler[0].stride == (1, 2, 2) and stc.sampler[0].padding == (1, 1, 1)
    assert len(list(stc.s1.children())) == len(list(stc.s2.children())) == 4


def test_small_gate_width_follows_the_llm_and_has_no_compressor():
    with torch.device("meta"):
        model = build_model(omni_small(), pretrained=False)
    assert model.gate.mlp[0].out_features == model.llm.config.hidden_size == 896
    assert model.compressor is None
    assert len(list(model.body_projector.s1.children())) == 2


def test_splice_inserts_blocks_in_order_and_never_supervises_them():
    video, audio = 90, 91
    ids = torch.tensor([[1, video, 2, audio, 3], [4, audio, 5, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    labels = torch.tensor([[-100, -100, -100, -100, 3], [-100, -100, 5, -100, -100]])
    embeds = torch.arange(10, dtype=torch.float).reshape(2, 5, 1).expand(2, 5, 2).clone()
    blocks = {
        video: torch.full((1, 3, 2), 100.0),
        audio: torch.stack([torch.full((2, 2), 200.0), torch.full((2, 2), 300.0)]),
    }
    out, new_mask, new_labels = splice(embeds, ids, mask, labels, blocks)
    assert out.shape == (2, 8, 2)
    assert out[0, :, 0].tolist() == [0, 100, 100, 100, 2, 200, 200, 4]
    assert out[1, :5, 0].tolist() == [5, 300, 300, 7, 0]  # second audio block: sample 1's
    assert new_mask.tolist() == [[1] * 8, [1] * 4 + [0] * 4]
    assert new_labels[0].tolist() == [IGNORE_INDEX] * 7 + [3]
    assert new_labels[1].tolist() == [IGNORE_INDEX] * 3 + [5] + [IGNORE_INDEX] * 4
    with pytest.raises(ValueError, match="feature blocks"):
        splice(embeds, ids, mask, labels, {**blocks, video: torch.zeros(2, 3, 2)})
    with pytest.raises(ValueError, match="right-padded"):
        splice(embeds, ids, mask.flip(1), labels, blocks)


def test_slow_path_takes_frames_1_5_9_and_fast_path_pools_every_frame():
    from model.compressor import SlowFastCompressor

    # Every token of frame t carries the value t: which frames each path took is readable.
    frames = torch.arange(32, dtype=torch.float).view(1, 32, 1, 1).expand(1, 32, 196, 1)
    out = SlowFastCompressor()(frames)
    fast, slow = out[0, :1568, 0], out[0, 1568:, 0]
    assert fast.view(32, 49).mean(1).tolist() == list(range(32))
    assert slow.view(8, 196)[:, 0].tolist() == [1, 5, 9, 13, 17, 21, 25, 29]
    assert SlowFastCompressor()(frames[:, :1]).shape == (1, 49 + 196, 1)


def test_tiny_model_trains_end_to_end_and_generates(tiny_config):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_config.llm.source)
    gate_tok = AutoTokenizer.from_pretrained(tiny_config.gate_text.source)
    ids = {k: tok.convert_tokens_to_ids(f"<{k}>") for k in ("video", "audio")}
    model = build_model(tiny_config, token_ids=ids)
    assert all(not p.requires_grad for p in model.vision.parameters())
    text = "<|im_start|>user\n<vi_start><video><vi_end>\n<au_start><audio><au_end>\nhi<|im_end|>\n"
    enc = tok([text + "<|im_start|>assistant\na man<|im_end|>\n"], return_tensors="pt")
    gate = gate_tok(["hi"], return_tensors="pt")
    media = {
        "pixel_values": torch.randn(1, 8, 3, 84, 84),
        "audio_features": torch.randn(1, 16, 100),
        "gate_input_ids": gate.input_ids,
        "gate_attention_mask": gate.attention_mask,
    }
    out = model(enc.input_ids, enc.attention_mask, enc.input_ids.clone(), **media)
    # 8 frames of a 6×6 grid → 4×4 after the sampler → 8·2·2 fast + 2·16 slow = 64 rows; 16 audio.
    assert out.input_tokens == enc.input_ids.shape[1] - 2 + 64 + 16
    assert out.gate_weights.sum().item() == pytest.approx(1.0)
    out.loss.backward()
    assert model.gate.mlp[0].weight.grad.abs().sum() > 0
    assert model.vision.model.embeddings.patch_embedding.weight.grad is None
    prompt = tok([text + "<|im_start|>assistant\n"], return_tensors="pt")
    answer, weights = model.generate(prompt.input_ids, prompt.attention_mask, 4, **media)
    assert answer.shape == (1, 4) and weights.shape == (1, 3)


def test_parameter_counts_cover_every_part(tiny_config):
    counts = parameter_counts(build_model(tiny_config, pretrained=False))
    assert all(counts[p] > 0 for p in PARTS if p != "compressor")


def test_branch_pretraining_leaves_the_other_branches_and_the_gate_out(tiny_config):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_config.llm.source)
    ids = {k: tok.convert_tokens_to_ids(f"<{k}>") for k in ("video", "audio")}
    model = build_model(tiny_config, token_ids=ids).eval()
    model.only_branch = "face"
    enc = tok(["<|im_start|>user\n<vi_start><video><vi_end>\nhi<|im_end|>\n"], return_tensors="pt")
    media = {
        "pixel_values": torch.randn(1, 8, 3, 84, 84),
        "gate_input_ids": torch.tensor([[2, 3]]),
        "gate_attention_mask": torch.ones(1, 2, dtype=torch.long),
    }
    with torch.no_grad():
        before = model(enc.input_ids, enc.attention_mask, **media)
        for part in (model.body_projector, model.interaction_projector, model.gate):
            for p in part.parameters():
                p.add_(1.0)
        after = model(enc.input_ids, enc.attention_mask, **media)
    assert torch.equal(before.logits, after.logits)
    assert before.gate_weights.tolist() == [[0.0, 0.0, 1.0]]  # (interaction, body, face)
    with pytest.raises(ValueError, match="<audio> placeholder but no audio"):
        audio = tok(["<au_start><audio><au_end>"], return_tensors="pt")
        model(audio.input_ids, audio.attention_mask)
