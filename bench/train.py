"""Training throughput of the omni model: tokens per second of a full training step.

    python bench/train.py [--sizes tiny small] [--steps 2] [--batch 1] [--text-tokens 128]

One step = forward + backward + AdamW update of the stage-3 trainable parts (LLM, projectors,
gate) on a synthetic batch: a clip's video and audio blocks, a question and an answer
(`bench/gpu_check.py`'s step, at the sizes and shapes given here). Weights are random (the
small size is built from its shipped architecture files, nothing is downloaded), which does
not change the cost. On a GPU the step runs in bf16 autocast and MFU is reported against the
device's peak bf16 FLOP/s (`--peak-tflops`, default 989 for an H100/H200 SXM). Tokens are LLM
positions (text + spliced media rows).
"""

from __future__ import annotations

import argparse

import torch
from gpu_check import STAGE3, measure

from model.sizes import TINY_DIR, omni_small, omni_tiny
from model.tiny import ensure_tiny_components


def mfu(row: dict, gpu: bool) -> str:
    return f"{row['mfu']:.1%}" if gpu else "-"


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
    configs = {"tiny": lambda: omni_tiny(ensure_tiny_components(TINY_DIR)), "small": omni_small}
    rows = [
        measure(
            size,
            configs[size](),
            STAGE3,
            args.batch,
            args.text_tokens,
            args.steps,
            device,
            args.peak_tflops,
        )  # fmt: skip
        for size in args.sizes
    ]
    gpu = device.type == "cuda"
    print(
        f"{'size':<6} {'device':<6} {'tokens/step':>11} {'step_s':>8} {'tokens/s':>10} {'MFU':>6}"
    )
    for r in rows:
        print(
            f"{r['name']:<6} {device.type:<6} {r['tokens_per_step']:>11} {r['step_s']:>8.3f} "
            f"{r['tokens_per_s']:>10.1f} {mfu(r, gpu):>6}"
        )
    fields = " ".join(
        f"{r['name']}_tokens_per_s={r['tokens_per_s']:.1f}"
        + (f" {r['name']}_mfu={r['mfu']:.4f}" if gpu else "")
        for r in rows
    )
    print(f"RESULT bench=train device={device.type} {fields}")


if __name__ == "__main__":
    main()
