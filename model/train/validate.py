"""Validation loss: the stage's loss on held-out samples (`data.val`: the exports under
`exports/val/`, whole sources that training never sees), every `eval_every` steps and at the
end.

The same loss as training (summed over the supervised tokens, divided by their count), over
the first `data.val_max_samples` of the files in their order, so every pass scores the same
samples. Each worker takes every world-size-th sample and the same number of micro-batches
(a worker short of samples runs a blank one), so FSDP's gathers line up; the sums are added
over the workers, and one process and N workers report the same number. The model runs in
eval mode under no_grad, then goes back to the modes it had.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from model.data.dataset import OmniDataset
from model.data.processor import OmniProcessor
from model.data.records import load_records
from model.splice import IGNORE_INDEX
from model.train.config import TrainConfig
from model.train.dist import Dist

MODEL_KEYS = (
    "input_ids",
    "attention_mask",
    "labels",
    "pixel_values",
    "face_pixel_values",
    "audio_features",
    "gate_input_ids",
    "gate_attention_mask",
)


def blank_batch(pad_id: int) -> dict:
    """One padding token, nothing supervised: a worker whose micro-batch was all skipped
    samples (or that has no validation sample left) still runs a forward (loss 0), so it
    joins every collective of DDP/FSDP and no other worker waits for it forever."""
    ids = torch.tensor([[pad_id]])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids * 0 - 100}


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def validation_records(cfg: TrainConfig) -> list:
    """`val_max_samples` records of `data.val` spread evenly through the files (the mixed
    file is written a branch at a time, and a branch's file a shard at a time: the first
    ones would be one branch's, one shard's)."""
    records: list = []
    for name in cfg.data.val:
        path = Path(name)
        if not path.exists():
            raise FileNotFoundError(
                f"{cfg.name}: validation data {path} not found (data.val, run {cfg.run!r}; "
                "`make instructions` writes it under exports/val/)"
            )
        records += load_records(
            path,
            media_root=cfg.data.media_root,
            default_audio_instruction=cfg.data.default_audio_instruction,
        )
    keep = min(len(records), cfg.data.val_max_samples)
    return [records[i * len(records) // keep] for i in range(keep)]


class Validator:
    """Scores a model on the stage's validation samples (this worker's share of them)."""

    def __init__(self, cfg: TrainConfig, processor: OmniProcessor, dist: Dist):
        self.cfg, self.dist, self.pad_id = cfg, dist, processor.pad_id
        records = validation_records(cfg)
        self.samples = len(records)
        self.dataset = OmniDataset(
            records,
            processor,
            max_text_tokens=cfg.data.max_text_tokens,
            on_error=cfg.data.on_error,
            face_crops=cfg.data.face_crops,
        )
        mine = list(range(dist.rank, self.samples, dist.world_size))
        size = cfg.schedule.micro_batch_size
        count = math.ceil(math.ceil(self.samples / dist.world_size) / size)
        self.batches = [mine[i * size : (i + 1) * size] for i in range(count)]

    def __call__(
        self,
        model: torch.nn.Module,
        precision: Callable[[], contextlib.AbstractContextManager],
        every_branch: bool,
    ) -> dict[str, Any]:
        """{"val_loss", "val_samples" (scored), "val_tokens"} over every worker."""
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
        loss_sum, targets, scored = 0.0, 0, 0
        try:
            with torch.no_grad():
                for indices in self.batches:
                    batch = (self.dataset.collate_fn([self.dataset[i] for i in indices])
                             if indices else {"empty": True})  # fmt: skip
                    blank = batch["empty"]
                    if blank:
                        batch = blank_batch(self.pad_id)
                    inputs = {k: batch[k] for k in MODEL_KEYS if batch.get(k) is not None}
                    model.run_every_branch = blank or every_branch
                    with precision():
                        out = model(**to_device(inputs, self.dist.device))
                    loss_sum += float(out.loss_sum)
                    if not blank:
                        targets += int((batch["labels"] != IGNORE_INDEX).sum())
                        scored += len(indices) - len(batch["skipped"])
        finally:
            for module, training in modes:
                module.train(training)
        total, tokens, samples = self.dist.all_sum([loss_sum, float(targets), float(scored)])
        # val_samples: those scored (a sample that fails to load is skipped, as in training).
        return {"val_loss": total / max(tokens, 1.0), "val_samples": int(samples),
                "val_tokens": int(tokens)}  # fmt: skip
