"""Training throughput of the omni model: tokens per second of a full training step.

    python bench/train.py [--sizes tiny small] [--steps 3] [--frames N]

One step = forward + backward + AdamW update of the stage-3 trainable parts (LLM, projectors,
gate) on a synthetic batch: a clip's video block, a question and an answer. Weights are random
(the small size is built from its shipped architecture files, nothing is downloaded), which
does not change the cost. On a GPU the step runs in bf16 autocast and MFU is reported against
the device's peak bf16 FLOP/s (`--peak-tflops`, default 989 for an H100 SXM).
Tokens are LLM positions (text + spliced media rows).
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from model.build import build_model
from model.sizes import TINY_DIR, omni_small, omni_tiny
from model.tiny import ensure_tiny_components
from model.train.config import OptimSection
from model.train.freeze import set_trainable
from model.train.optim import build_optimizer

STAGE3 = ["llm", "face_projector", "body_projector", "interaction_projector", "gate"]


def synthetic_batch(model, batch: int, text_tokens: int, device) -> dict:
    cfg, llm = model.config, model.llm.config
    size = model.vision.image_size
    video = llm.vocab_size - 1
    model.video_token_id = video
    ids = torch.randint(0, llm.vocab_size - 8, (batch, text_tokens))
    ids[:, 4] = video
    labels = ids.clone()
    labels[:, : text_tokens // 2] = -100  # the answer half is supervised
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "labels": labels.to(device),
        "pixel_values": torch.randn(batch, cfg.num_frames, 3, size, size, device=device),
        "gate_input_ids": torch.randint(0, 100, (batch, 16), device=device),
        "gate_attention_mask": torch.ones(batch, 16, dtype=torch.long, device=device),
    }


def measure(size: str, steps: int, batch: int, text_tokens: int, device, peak_tflops: float):
    cfg = omni_tiny(ensure_tiny_components(TINY_DIR)) if size == "tiny" else omni_small()
    torch.manual_seed(0)
    model = build_model(cfg, pretrained=False).to(device)
    set_trainable(model, STAGE3)
    optimizer = build_optimizer(model, OptimSection(lr=1e-5))
    data = synthetic_batch(model, batch, text_tokens, device)
    bf16 = device.type == "cuda"
    if bf16:
        model.llm.gradient_checkpointing_enable({"use_reentrant": False})
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    times, tokens = [], 0
    for step in range(steps + 1):  # the first step warms up and is not timed
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with autocast:
            out = model(**data)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - t0)
            tokens = out.input_tokens
    seconds = sorted(times)[len(times) // 2]
    row = {"size": size, "device": device.type, "tokens_per_step": tokens}
    row["step_s"] = seconds
    row["tokens_per_s"] = tokens / seconds
    if device.type == "cuda":
        # Training FLOPs ≈ 6 × the LLM's non-embedding parameters × tokens (the frozen towers'
        # forward, 2 × params × their tokens, is left out: MFU here is a lower bound).
        embedding = model.llm.get_input_embeddings().weight.numel()
        llm_params = sum(p.numel() for p in model.llm.parameters()) - embedding
        row["mfu"] = 6 * llm_params * tokens / seconds / (peak_tflops * 1e12)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--text-tokens", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = [
        measure(s, args.steps, args.batch, args.text_tokens, device, args.peak_tflops)
        for s in args.sizes
    ]
    print(
        f"{'size':<6} {'device':<6} {'tokens/step':>11} {'step_s':>8} {'tokens/s':>10} {'MFU':>6}"
    )
    for r in rows:
        mfu = f"{r['mfu']:.1%}" if "mfu" in r else "-"
        print(
            f"{r['size']:<6} {r['device']:<6} {r['tokens_per_step']:>11} {r['step_s']:>8.3f} "
            f"{r['tokens_per_s']:>10.1f} {mfu:>6}"
        )
    fields = " ".join(
        f"{r['size']}_tokens_per_s={r['tokens_per_s']:.1f}"
        + (f" {r['size']}_mfu={r['mfu']:.4f}" if "mfu" in r else "")
        for r in rows
    )
    print(f"RESULT bench=train device={device.type} {fields}")


if __name__ == "__main__":
    main()
