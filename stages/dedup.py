"""dedup: drop clips whose brief captions say the same thing (a global stage).

It sees every kept caption of the run at once (see curation/dedup.py for the method); the
clip with the best quality key in each group is kept, the others are rejected as `duplicate`
with `duplicate_of` and `similarity`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from curation import schemas
from curation.backends.base import check_model_available
from curation.config import DedupConfig
from curation.dedup import QUALITY_FACTORS, dedup_captions
from curation.embed import CaptionEmbedder, resolve_model
from curation.worker import GpuNeed, Worker
from stages.base import Stage, kept, rejected

DECISIONS = pa.schema([*schemas.DEDUP_COLUMNS, *schemas.VERDICT])


@dataclass(kw_only=True)
class DedupStage(Stage):
    name: ClassVar[str] = "dedup"
    output_folder: ClassVar[str] = "dedup"
    schema: ClassVar[pa.Schema] = schemas.DEDUP
    adds: ClassVar[list[pa.Field]] = schemas.DEDUP_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "brief_caption")
    also_reads: ClassVar[tuple[str, ...]] = ("quality", *QUALITY_FACTORS)  # the quality key
    uses_actor: ClassVar[bool] = True
    is_global: ClassVar[bool] = True

    batch_rows: ClassVar[int] = 1 << 62  # global: the whole column set at once

    cfg: DedupConfig
    _embedder: CaptionEmbedder | None = field(default=None, init=False, repr=False)

    def gpu_need(self) -> GpuNeed:
        return GpuNeed.for_device(self.cfg.device) if self.cfg.device else GpuNeed()

    def preflight(self) -> None:
        source = resolve_model(self.cfg.embedder)  # bundled models resolve to a local folder
        check_model_available(source)

    def setup(self, worker: Worker) -> None:
        if self._embedder is None:
            cfg = self.cfg
            device = worker.device(cfg.device, f"{self.name} embedder")
            self._embedder = CaptionEmbedder(cfg.embedder, device, cfg.embed_batch_size)
            self._embedder.load()

    def teardown(self) -> None:
        self._embedder = None

    def process(self, batch: pa.Table) -> pa.Table:
        """The dedup columns and verdict of every row of `batch`, in its order (a global
        stage returns only what it decides: curation/shard_task.py appends it to the rows)."""
        assert self._embedder is not None, "setup() first"
        cfg = self.cfg
        found = dedup_captions(
            batch, self._embedder, cfg.threshold, exact_max=cfg.exact_max,
            partition_size=cfg.partition_size, boundary_margin=cfg.boundary_margin, probes=cfg.probes,
        ).to_pylist()  # fmt: skip
        rows: list[dict[str, Any]] = []
        for d in found:
            verdict = kept()
            if not d["kept"]:
                detail = f"caption repeats {d['duplicate_of']} (cosine {d['similarity']:.3f} >= {cfg.threshold})"
                verdict = rejected("duplicate", detail)
            rows.append(
                {"duplicate_of": d["duplicate_of"], "similarity": d["similarity"], **verdict}
            )
        return pa.Table.from_pylist(rows, schema=DECISIONS)
