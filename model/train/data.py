"""The stage's data: records from every file in `data.train`, a dataset and a step-exact loader."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import DataLoader

from model.config import OmniConfig
from model.data.dataset import OmniDataset
from model.data.processor import OmniProcessor
from model.data.records import load_records, with_audio_dropped
from model.train.config import TrainConfig
from model.train.dist import Dist
from model.train.sampler import StepBatchSampler


def training_records(cfg: TrainConfig) -> list:
    records = []
    for name in cfg.data.train:
        path = Path(name)
        if not path.exists():
            raise FileNotFoundError(
                f"{cfg.name}: training data {path} not found (data.train, run {cfg.run!r})"
            )
        records += load_records(
            path,
            media_root=cfg.data.media_root,
            default_audio_instruction=cfg.data.default_audio_instruction,
        )
    if cfg.data.drop_audio_rate > 0:
        records = with_audio_dropped(records, cfg.data.drop_audio_rate, cfg.seed)
    return records


def build_loader(
    cfg: TrainConfig, omni: OmniConfig, *, dist: Dist, start_step: int
) -> tuple[DataLoader, OmniProcessor, int]:
    """The loader from `start_step` on, the processor, and the stage's total steps."""
    processor = OmniProcessor.from_config(omni)
    records = training_records(cfg)
    dataset = OmniDataset(
        records,
        processor,
        max_text_tokens=cfg.data.max_text_tokens,
        on_error=cfg.data.on_error,
        face_crops=cfg.data.face_crops,
    )
    steps = cfg.schedule.total_steps(len(dataset), cfg.global_batch(dist.world_size))
    sampler = StepBatchSampler(
        len(dataset),
        micro_batch_size=cfg.schedule.micro_batch_size,
        grad_accum=cfg.schedule.grad_accum,
        world_size=dist.world_size,
        rank=dist.rank,
        seed=cfg.seed,
        shuffle=cfg.data.shuffle,
        start_step=start_step,
        steps=steps,
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=dataset.collate_fn,
        num_workers=cfg.data.num_workers,
        persistent_workers=False,
    )
    if dist.is_main:
        print(
            f"{cfg.name}: {len(dataset)} samples, global batch {sampler.global_batch}, "
            f"{steps} steps",
            flush=True,
        )
    return loader, processor, steps
