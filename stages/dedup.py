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
from curation.dedup import dedup_captions
from curation.embed import CaptionEmbedder, resolve_model
from stages.base import Stage, kept, rejected


@dataclass(kw_only=True)
class DedupStage(Stage):
    name: ClassVar[str] = "dedup"
    output_folder: ClassVar[str] = "dedup"
    schema: ClassVar[pa.Schema] = schemas.DEDUP
    adds: ClassVar[list[pa.Field]] = schemas.DEDUP_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "brief_caption")
    uses_actor: ClassVar[bool] = True
    is_global: ClassVar[bool] = True

    embedder: str
    embed_batch_size: int = 256
    device: str | None = None
    threshold: float = 0.9
    exact_max: int = 20_000
    partition_size: int = 2000
    boundary_margin: float = 0.12
    probes: int = 8
    batch_size: int = 1 << 62  # global: the whole column set at once
    _embedder: CaptionEmbedder | None = field(default=None, init=False, repr=False)

    def preflight(self) -> None:
        source = resolve_model(self.embedder)  # bundled models resolve to a local folder
        check_model_available(source)

    def setup(self) -> None:
        if self._embedder is None:
            self._embedder = CaptionEmbedder(self.embedder, self.device, self.embed_batch_size)
            self._embedder.load()

    def process(self, batch: pa.Table) -> pa.Table:
        self.setup()
        assert self._embedder is not None
        found = dedup_captions(
            batch, self._embedder, self.threshold, exact_max=self.exact_max,
            partition_size=self.partition_size, boundary_margin=self.boundary_margin, probes=self.probes,
        ).to_pylist()  # fmt: skip
        rows: list[dict[str, Any]] = []
        for clip, d in zip(batch.to_pylist(), found, strict=True):
            verdict = kept()
            if not d["kept"]:
                detail = f"caption repeats {d['duplicate_of']} (cosine {d['similarity']:.3f} >= {self.threshold})"
                verdict = rejected("duplicate", detail)
            rows.append(
                {
                    **clip,
                    "duplicate_of": d["duplicate_of"],
                    "similarity": d["similarity"],
                    **verdict,
                }
            )
        return self.table(rows)
