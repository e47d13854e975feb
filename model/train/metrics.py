"""Training metrics: a line on stdout and TensorBoard scalars (main process only)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from model.config import BRANCHES


def gate_stats(weights: list[torch.Tensor]) -> dict[str, float]:
    """Mean weight per branch and mean entropy (nats; ln 3 ≈ 1.10 is uniform) of a step's gates."""
    if not weights:
        return {}
    w = torch.cat([x.detach().float().cpu() for x in weights])
    stats = {f"gate/{b}": float(w[:, i].mean()) for i, b in enumerate(BRANCHES)}
    stats["gate/entropy"] = float(-(w * w.clamp_min(1e-12).log()).sum(-1).mean())
    return stats


class MetricsLogger:
    def __init__(self, output_dir: Path, enabled: bool, tensorboard: bool):
        self.enabled = enabled
        self.writer = None
        if enabled and tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(output_dir / "tensorboard"))

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        parts = [f"step {step}"]
        for key, value in metrics.items():
            if isinstance(value, float):
                text = f"{value:.3e}" if key == "lr" else f"{value:.4f}"
                if key == "tokens_per_s":
                    text = f"{value:,.0f}"
                parts.append(f"{key} {text}")
            else:
                parts.append(f"{key} {value}")
        print(" | ".join(parts), flush=True)
        if self.writer is not None:
            for key, value in metrics.items():
                if isinstance(value, int | float) and math.isfinite(value):
                    self.writer.add_scalar(key, value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
