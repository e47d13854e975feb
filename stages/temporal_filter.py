"""temporal: reject static clips (too few keyframes) and chaotic ones (too many per second).

With `score_only` every clip is kept and `temporal_verdict` still says what the filter would
have done, so thresholds can be tuned on a finished run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa

from curation import schemas
from stages.base import Stage, kept, rejected


@dataclass(kw_only=True)
class TemporalFilterStage(Stage):
    name: ClassVar[str] = "temporal"
    output_folder: ClassVar[str] = "temporal"
    schema: ClassVar[pa.Schema] = schemas.TEMPORAL
    adds: ClassVar[list[pa.Field]] = schemas.TEMPORAL_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "keyframes", "keyframe_rate")

    min_keyframes: int = 2
    max_keyframes_per_s: float = 12.0
    score_only: bool = False
    batch_size: int = 4096

    def verdict(self, keyframes: int, rate: float) -> tuple[str, str | None]:
        if keyframes < self.min_keyframes:
            return "static", f"{keyframes} keyframe(s) < min_keyframes {self.min_keyframes}"
        if rate > self.max_keyframes_per_s:
            return (
                "chaotic",
                f"{rate:.2f} keyframes/s > max_keyframes_per_s {self.max_keyframes_per_s}",
            )
        return "ok", None

    def process(self, batch: pa.Table) -> pa.Table:
        rows = []
        for row in batch.to_pylist():
            name, detail = self.verdict(row["keyframes"], row["keyframe_rate"])
            row["temporal_verdict"] = name
            if name == "ok" or self.score_only:
                row.update(kept())
            else:
                row.update(rejected(name, detail))
            rows.append(row)
        return self.table(rows)
