"""Learnability of the instruction gate: when only one branch's input carries the answer, the
gate learns to weight that branch.

Synthetic task: the answer ("smiling" or "walking") is the brightness of the frames one branch
sees. The face branch sees face crops (`face_pixel_values`), the body and interaction branches
the full frames; the other input carries an independent random brightness, a distractor.
"""

from __future__ import annotations

import pytest
import torch

from model.build import build_model
from model.train.freeze import set_trainable

ANSWERS = ("smiling", "walking")
QUESTION = "what emotion does the person show"


def _frames(bright: bool, generator: torch.Generator) -> torch.Tensor:
    level = 1.0 if bright else -1.0
    return level + 0.1 * torch.randn(8, 3, 84, 84, generator=generator)


def _batch(tok, gate_tok, informative: str, n: int, generator: torch.Generator) -> dict:
    texts, faces, frames = [], [], []
    for _ in range(n):
        answer = int(torch.randint(0, 2, (), generator=generator))
        distractor = bool(torch.randint(0, 2, (), generator=generator))
        signal, noise = _frames(bool(answer), generator), _frames(distractor, generator)
        faces.append(signal if informative == "face" else noise)
        frames.append(noise if informative == "face" else signal)
        texts.append(
            f"<|im_start|>user\n<vi_start><video><vi_end>\n{QUESTION}<|im_end|>\n"
            f"<|im_start|>assistant\n{ANSWERS[answer]}<|im_end|>\n"
        )
    enc = tok(texts, return_tensors="pt", padding=True, padding_side="right")
    prompt_len = len(tok(texts[0].split("assistant\n")[0] + "assistant\n").input_ids)
    labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
    labels[:, :prompt_len] = -100
    gate = gate_tok([QUESTION] * n, return_tensors="pt")
    return {
        "input_ids": enc.input_ids,
        "attention_mask": enc.attention_mask,
        "labels": labels,
        "pixel_values": torch.stack(frames),
        "face_pixel_values": torch.stack(faces),
        "gate_input_ids": gate.input_ids,
        "gate_attention_mask": gate.attention_mask,
    }


def _train_gate(tiny_config, informative: str, steps: int = 50) -> tuple[torch.Tensor, ...]:
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tiny_config.llm.source)
    gate_tok = AutoTokenizer.from_pretrained(tiny_config.gate_text.source)
    ids = {k: tok.convert_tokens_to_ids(f"<{k}>") for k in ("video", "audio")}
    model = build_model(tiny_config, token_ids=ids)
    set_trainable(
        model, ["gate", "face_projector", "body_projector", "interaction_projector", "llm"]
    )
    model.train()
    model.bert.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-3)
    first = losses = None
    for step in range(steps):
        out = model(**_batch(tok, gate_tok, informative, 8, generator))
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        weights = out.gate_weights.detach().mean(0)
        first = weights if first is None else first
        losses = out.loss.item() if step == 0 else losses
    return first, weights, losses, out.loss.item()


@pytest.mark.slow
def test_gate_learns_to_weight_the_face_branch_when_only_faces_answer(tiny_config):
    first, last, loss0, loss1 = _train_gate(tiny_config, "face")
    assert loss1 < loss0 / 10  # the task is learned
    # Weights are (interaction, body, face); the face branch starts near a third.
    assert first[2] < 0.45
    assert last[2] > 0.6
    assert last[2] > last[0] + last[1]


@pytest.mark.slow
def test_gate_moves_away_from_the_face_branch_when_only_full_frames_answer(tiny_config):
    first, last, _, _ = _train_gate(tiny_config, "frames")
    assert last[2] < first[2] - 0.05
    assert last[0] + last[1] > 0.6
