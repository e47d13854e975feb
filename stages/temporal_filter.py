"""temporal: reject static clips (too few keyframes) and chaotic ones (too many per second).

With `score_only` every clip is kept and `temporal_verdict` still says what the filter would
have done, so thresholds can be tuned on a finished run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa

from curation import schemas
from curation.config import TemporalConfig
from stages.base import Stage, kept, rejected


@dataclass(kw_only=True)
class TemporalFilterStage(Stage):
    name: ClassVar[str] = "temporal"
    output_folder: ClassVar[str] = "temporal"
    schema: ClassVar[pa.Schema] = schemas.TEMPORAL
    adds: ClassVar[list[pa.Field]] = schemas.TEMPORAL_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "keyframes", "keyframe_rate")

    batch_rows: ClassVar[int] = 4096

    cfg: TemporalConfig

    def verdict(self, keyframes: int, rate: float) -> tuple[str, str | None]:
        cfg = self.cfg
        if keyframes < cfg.min_keyframes:
            return "static", f"{keyframes} keyframe(s) < min_keyframes {cfg.min_keyframes}"
        if rate > cfg.max_keyframes_per_s:
            return (
                "chaotic",
                f"{rate:.2f} keyframes/s > max_keyframes_per_s {cfg.max_keyframes_per_s}",
            )
        return "ok", None

    def process(self, batch: pa.Table) -> pa.Table:
        rows = []
        for row in batch.to_pylist():
            name, detail = self.verdict(row["keyframes"], row["keyframe_rate"])
            row["temporal_verdict"] = name
            if name == "ok" or self.cfg.score_only:
                row.update(kept())
            else:
                row.update(rejected(name, detail))
            rows.append(row)
        return self.table(rows)
