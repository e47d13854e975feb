"""The model a stage starts from: built, filled from its base, earlier stages and its own last
checkpoint, frozen as configured, and (under FSDP) sharded without a full copy per worker."""

from __future__ import annotations

from pathlib import Path

import torch

from model.build import TOWERS, build_model, init_missing
from model.config import PARTS, OmniConfig
from model.data.processor import OmniProcessor
from model.omni import HumanOmniModel
from model.sizes import SIZES, omni_tiny
from model.tiny import ensure_tiny_components
from model.train import checkpoint as ckpt
from model.train.config import TrainConfig
from model.train.dist import Dist, materialize, shard
from model.train.freeze import set_trainable


def omni_config_for(cfg: TrainConfig) -> OmniConfig:
    if cfg.model.base is not None:
        return OmniConfig.load(Path(cfg.model.base) / "omni_config.json")
    if cfg.model.size == "tiny":
        return omni_tiny(ensure_tiny_components(cfg.model.tiny_dir))
    return SIZES[cfg.model.size]()


def saved_parts(cfg: TrainConfig) -> list[str]:
    """What a checkpoint of this stage holds: the parts it trains."""
    return [p for p in PARTS if p in cfg.trainable]


def prepare_model(
    cfg: TrainConfig, omni: OmniConfig, processor: OmniProcessor, resume_from: Path | None
) -> HumanOmniModel:
    torch.manual_seed(cfg.seed)  # new modules start identical on every worker
    base = ckpt.stage_parts(cfg.model.base) if cfg.model.base is not None else []
    model = build_model(
        omni,
        pretrained=[t for t in TOWERS if t not in base],
        empty=bool(base),
        token_ids=processor.token_ids,
        vocab_size=processor.vocab_size,
    )
    if base:  # the base's parts fill the model; parts it lacks start fresh
        ckpt.load_stage_parts(model, cfg.model.base, base, dtype=torch.float32)
        init_missing(model)
    for init in cfg.init_from:
        ckpt.load_stage_parts(model, init.checkpoint, init.parts)
    if resume_from is not None:
        ckpt.load_parts(model, resume_from, saved_parts(cfg))
    set_trainable(model, cfg.trainable)
    return model


def prepare_sharded(
    cfg: TrainConfig,
    omni: OmniConfig,
    processor: OmniProcessor,
    resume_from: Path | None,
    dist: Dist,
    bf16: bool,
) -> HumanOmniModel:
    """The same model under FSDP2: rank 0 builds it whole on its CPU (`prepare_model`); every
    rank builds it on the meta device, shards it, allocates only its shard on its device and
    receives its shard of every tensor from rank 0, one tensor at a time. Host memory holds
    one full copy (rank 0's), device memory one shard per worker."""
    source = prepare_model(cfg, omni, processor, resume_from) if dist.is_main else None
    model = build_model(
        omni,
        pretrained=False,
        empty=True,
        token_ids=processor.token_ids,
        vocab_size=processor.vocab_size,
    )
    set_trainable(model, cfg.trainable)
    shard(model, dist, bf16)
    materialize(model, dist, source.state_dict() if source is not None else {})
    del source
    return model
