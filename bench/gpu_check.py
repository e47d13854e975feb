"""The GPU check: bf16 training steps of the omni model at real shapes on one GPU.

    bash bench/gpu_check.sh            # or: python bench/gpu_check.py [--peak-tflops 989]
    python bench/gpu_check.py --dry-run   # the same code on a CPU with the tiny model

Needs only PyTorch, transformers, timm and safetensors (no Ray, no vLLM, no network): the
models are built from the architecture files shipped in model/components/ with random
weights, which does not change the cost.

1. `small` (SigLIP base/16, Qwen2.5-0.5B, Whisper-large-v3 encoder): stage-3 steps (LLM,
   projectors and gate train; towers frozen in bf16) on clips of 8 frames at 224 px, 30 s of
   audio and 512 text tokens, micro-batch 8, gradient checkpointing, bf16 autocast.
2. `7b`: a projector-only step (stage 1b without the LLM: the three projectors and the gate
   train, everything else frozen in bf16) on one clip of 32 frames at 384 px, 30 s of audio
   and 256 text tokens; the gradient still flows back through the whole LLM.

Tokens are LLM positions (text + spliced media rows). MFU counts 6 × parameters × tokens for
what trains (the LLM on its positions, the projectors on their patch tokens), 4 × for what
the gradient only flows through (the frozen LLM of step 2), 2 × for frozen towers' forward
(SigLIP on its patches, Whisper on its 1500 positions); attention's quadratic term and the
recomputation of checkpointing are left out, so it is a lower bound.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from model.build import build_model
from model.config import OmniConfig
from model.sizes import TINY_DIR, omni_7b, omni_small, omni_tiny

STAGE3 = ["llm", "face_projector", "body_projector", "interaction_projector", "gate"]
PROJECTORS = ["face_projector", "body_projector", "interaction_projector", "gate"]


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build(cfg: OmniConfig, trainable: list[str], device: torch.device, bf16: bool):
    """Random weights built on the device: frozen parts in bf16 (fp32 on a CPU), trained
    parts in fp32 (the master weights; autocast computes in bf16)."""
    torch.manual_seed(0)
    frozen_dtype = torch.bfloat16 if bf16 else torch.float32
    previous = torch.get_default_dtype()
    torch.set_default_dtype(frozen_dtype)
    try:
        with torch.device(device):
            model = build_model(cfg, pretrained=False)
    finally:
        torch.set_default_dtype(previous)
    model.requires_grad_(False)
    for part in trainable:
        getattr(model, part).to(torch.float32).requires_grad_(True)
    return model


def batch(model, size: int, text_tokens: int, device: torch.device) -> dict:
    cfg, llm = model.config, model.llm.config
    image = model.vision.image_size
    video, audio = llm.vocab_size - 1, llm.vocab_size - 2
    model.video_token_id, model.audio_token_id = video, audio
    ids = torch.randint(0, llm.vocab_size - 8, (size, text_tokens))
    ids[:, 4], ids[:, 6] = video, audio
    labels = ids.clone()
    labels[:, : text_tokens // 2] = -100  # the answer half is supervised
    whisper = model.audio_encoder.model.config
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "labels": labels.to(device),
        "pixel_values": torch.randn(size, cfg.num_frames, 3, image, image, device=device),
        "audio_features": torch.randn(
            size, whisper.num_mel_bins, 2 * whisper.max_source_positions, device=device
        ),
        "gate_input_ids": torch.randint(0, 100, (size, 16), device=device),
        "gate_attention_mask": torch.ones(size, 16, dtype=torch.long, device=device),
    }


def model_flops(model, trainable: list[str], data: dict, llm_tokens: int) -> float:
    """FLOPs of one step by the rule in the module docstring."""
    b, frames = data["pixel_values"].shape[:2]
    vision = model.vision.model.config
    patches = b * frames * (vision.image_size // vision.patch_size) ** 2
    embed = model.llm.get_input_embeddings().weight.numel()
    llm = _params(model.llm) - embed
    flops = (6 if "llm" in trainable else 4) * llm * llm_tokens
    projectors = sum(_params(getattr(model, p)) for p in PROJECTORS if p != "gate")
    flops += 6 * projectors * patches
    flops += 2 * _params(model.vision) * patches
    audio = model.audio_encoder.model.config
    flops += 2 * _params(model.audio_encoder) * b * audio.max_source_positions
    return float(flops)


def measure(name, cfg, trainable, micro, text, steps, device, peak_tflops) -> dict:
    bf16 = device.type == "cuda"
    if bf16:
        torch.cuda.reset_peak_memory_stats()
    t_build = time.perf_counter()
    model = build(cfg, trainable, device, bf16)
    built_s = time.perf_counter() - t_build
    model.llm.gradient_checkpointing_enable({"use_reentrant": False})
    model.train()
    for part in ("vision", "audio_encoder", "bert"):
        getattr(model, part).eval()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, fused=bf16)
    data = batch(model, micro, text, device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    times, tokens = [], 0
    for step in range(steps + 1):  # the first step warms up and is not timed
        if bf16:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with autocast:
            out = model(**data)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if bf16:
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - t0)
        tokens = out.input_tokens
    seconds = sorted(times)[len(times) // 2]
    row = {
        "name": name,
        "build_s": built_s,
        "micro_batch": micro,
        "tokens_per_step": tokens,
        "step_s": seconds,
        "tokens_per_s": tokens / seconds,
        "loss": float(out.loss.detach()),
        "mfu": model_flops(model, trainable, data, tokens) / seconds / (peak_tflops * 1e12),
        "peak_bytes": torch.cuda.max_memory_allocated() if bf16 else 0,
    }
    del model, optimizer, data, out
    if bf16:
        torch.cuda.empty_cache()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="bf16 dense peak")
    parser.add_argument("--dry-run", action="store_true", help="the tiny model on a CPU")
    args = parser.parse_args()
    if args.dry_run:
        from model.tiny import ensure_tiny_components

        device = torch.device("cpu")
        tiny = omni_tiny(ensure_tiny_components(TINY_DIR))
        plan = [("small", tiny, STAGE3, 2, 32), ("7b", tiny, PROJECTORS, 1, 32)]
        steps = 1
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: run with --dry-run to check the script on a CPU")
        device = torch.device("cuda")
        plan = [("small", omni_small(), STAGE3, 8, 512), ("7b", omni_7b(), PROJECTORS, 1, 256)]
        steps = args.steps
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    rows = []
    for name, cfg, trainable, micro, text in plan:
        rows.append(measure(name, cfg, trainable, micro, text, steps, device, args.peak_tflops))
        r = rows[-1]
        print(
            f"{name:<6} trains {'+'.join(trainable)}: micro-batch {r['micro_batch']}, "
            f"{r['tokens_per_step']} tokens/step, {r['step_s']:.3f} s/step, "
            f"{r['tokens_per_s']:,.0f} tokens/s, MFU {r['mfu']:.1%}, "
            f"peak {r['peak_bytes'] / 2**30:.1f} GiB, built in {r['build_s']:.0f} s, "
            f"loss {r['loss']:.3f}",
            flush=True,
        )
    fields = " ".join(
        f"{r['name']}_tokens_per_s={r['tokens_per_s']:.1f} {r['name']}_mfu={r['mfu']:.4f} "
        f"{r['name']}_peak_bytes={r['peak_bytes']}"
        for r in rows
    )
    print(f"RESULT bench=gpu_check device={device.type} {fields}")


if __name__ == "__main__":
    main()
