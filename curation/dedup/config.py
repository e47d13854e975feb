"""Settings of the semantic de-duplication (the dedup stage's config section)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from curation.core.config import Section, TaskResources


class DedupConfig(Section):
    """Semantic de-duplication of brief captions (curation/dedup/groups.py, curation/dedup/scale.py)."""

    threshold: float = Field(0.68, gt=0, le=1, description="cosine similarity of near-duplicates")
    exact_max: int = Field(20_000, ge=1, description="up to this many clips: exact all-pairs")
    partition_size: int = Field(2000, ge=10, description="mean K-means partition above that")
    boundary_margin: float = Field(
        0.12, ge=0, le=2, description="a vector also joins partitions this much less similar"
    )
    probes: int = Field(16, ge=1, description="at most this many partitions a vector joins")
    coarse_size: int = Field(
        500_000, ge=1000, description="rows a pair-search task holds (a group of partitions)"
    )
    train_sample: int = Field(100_000, ge=1000, description="vectors K-means trains on, at least")
    search_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="its matrix products; auto: bfloat16 where native (same result)"
    )
    block_rows: int = Field(
        200_000, ge=1000, description="rows (whole shards) one read or assign task takes"
    )
    # The coordinating task (it holds the pairs and one key a clip), then each of its tasks
    # (read a block, assign a block, search a partition: memory grows with coarse_size).
    resources: TaskResources = TaskResources(cpus=1)
    tasks: TaskResources = TaskResources(cpus=1)

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        moved = {"embedder": "embed.model", "embed_batch_size": "embed.batch_size",
                 "device": "embed.device"}  # fmt: skip
        if isinstance(data, dict):
            for old, new in moved.items():
                if old in data:
                    raise ValueError(f"dedup.{old} is now {new} (stages/embed.py)")
        return data
