"""Splicing multimodal feature blocks into the LLM's input embeddings.

Each `<video>`/`<audio>` placeholder is one token in the text; here it is replaced by its
block of feature rows (a video's, then the next video's, in the order they appear, sample 0
first). Inserted rows are attended to and never supervised (label −100). Rows are right-padded.
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pad_sequence

IGNORE_INDEX = -100


def splice(
    embeds: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor | None,
    blocks: dict[int, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """embeds (B, L, D); blocks: placeholder id → (N, rows, D), one per occurrence in order."""
    if attention_mask is not None:
        # Rows must be right-padded: the real tokens are a prefix of each row.
        lengths = attention_mask.sum(dim=1, keepdim=True)
        prefix = torch.arange(attention_mask.shape[1], device=attention_mask.device) < lengths
        if not torch.equal(attention_mask.bool(), prefix):
            raise ValueError("splice needs right-padded rows (real tokens first, then padding)")
    taken = dict.fromkeys(blocks, 0)
    rows, masks, targets = [], [], []
    for b in range(input_ids.shape[0]):
        length = int(attention_mask[b].sum()) if attention_mask is not None else input_ids.shape[1]
        ids = input_ids[b, :length]
        parts, part_labels = [], []
        start = 0
        positions = [i for i, t in enumerate(ids.tolist()) if t in blocks]
        for pos in [*positions, length]:
            parts.append(embeds[b, start:pos])
            part_labels.append(labels[b, start:pos] if labels is not None else None)
            if pos == length:
                break
            token = int(ids[pos])
            if taken[token] >= blocks[token].shape[0]:
                raise ValueError(f"more placeholders of token {token} than feature blocks")
            block = blocks[token][taken[token]].to(embeds.dtype)
            taken[token] += 1
            parts.append(block)
            part_labels.append(
                torch.full((block.shape[0],), IGNORE_INDEX, dtype=torch.long, device=ids.device)
            )
            start = pos + 1
        rows.append(torch.cat(parts))
        if labels is not None:
            targets.append(torch.cat(part_labels))
        masks.append(torch.ones(rows[-1].shape[0], dtype=torch.long, device=ids.device))
    for token, used in taken.items():
        if used != blocks[token].shape[0]:
            raise ValueError(f"{blocks[token].shape[0]} feature blocks for {used} placeholders")
    out = pad_sequence(rows, batch_first=True)
    mask = pad_sequence(masks, batch_first=True)
    if labels is None:
        return out, mask, None
    return out, mask, pad_sequence(targets, batch_first=True, padding_value=IGNORE_INDEX)
