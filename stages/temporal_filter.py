"""temporal: reject static clips (too few keyframes) and chaotic ones (change that no camera or
person makes: flashes, jumps, flicker; curation/media/keyframes.py measures them on the scene pass).

Natural motion is never chaotic here: a walking crowd or a pan has many keyframes but no
flashes, no jumps after global alignment and consecutive changes that agree. Defaults come from
the labelled clips of `make bench-temporal-quality`. With `score_only` every clip is kept and
`temporal_verdict` still says what the filter would have done, so thresholds can be tuned on a
finished run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field

from curation.core import schemas
from curation.core.config import Resources, Section
from stages.base import Stage, kept, rejected


class TemporalConfig(Section):
    """The `temporal:` section: when a clip is static or chaotic."""

    min_keyframes: int = Field(2, ge=1, description="fewer keyframes: the clip is static")
    # Chaotic: change no camera or person makes (make bench-temporal-quality).
    max_flash_rate: float = Field(1.0, ge=0, description="flashes per second; more: chaotic")
    max_jump_rate: float = Field(1.0, ge=0, description="jumps per second; more: chaotic")
    max_flicker: float = Field(0.3, gt=0, le=1, description="change undoing itself; more: chaotic")
    score_only: bool = Field(False, description="record verdicts without rejecting")
    resources: Resources = Resources(cpus=0.25, concurrency=2)


def temporal_verdict(row: dict[str, Any], cfg: TemporalConfig) -> tuple[str, str | None]:
    """("ok" | "static" | "chaotic", why) for a scenes row."""
    if row["keyframes"] < cfg.min_keyframes:
        return "static", f"{row['keyframes']} keyframe(s) < min_keyframes {cfg.min_keyframes}"
    rules = (
        ("flash_rate", cfg.max_flash_rate, "flashes/s", "max_flash_rate"),
        ("jump_rate", cfg.max_jump_rate, "jumps/s", "max_jump_rate"),
        ("flicker", cfg.max_flicker, "flicker", "max_flicker"),
    )
    broken = [f"{row[column]:.2f} {unit} > {setting} {limit}"
              for column, limit, unit, setting in rules if row[column] > limit]  # fmt: skip
    return ("chaotic", "; ".join(broken)) if broken else ("ok", None)


@dataclass(kw_only=True)
class TemporalFilterStage(Stage):
    name: ClassVar[str] = "temporal"
    output_folder: ClassVar[str] = "temporal"
    order: ClassVar[float | None] = 30
    schema: ClassVar[pa.Schema] = schemas.TEMPORAL
    adds: ClassVar[list[pa.Field]] = schemas.TEMPORAL_COLUMNS
    reads: ClassVar[tuple[str, ...]] = (
        "clip_id", "keyframes", "flash_rate", "jump_rate", "flicker"
    )  # fmt: skip

    batch_rows: ClassVar[int] = 4096

    cfg: TemporalConfig

    def process(self, batch: pa.Table) -> pa.Table:
        rows = []
        for row in batch.to_pylist():
            name, detail = temporal_verdict(row, self.cfg)
            row["temporal_verdict"] = name
            if name == "ok" or self.cfg.score_only:
                row.update(kept())
            else:
                row.update(rejected(name, detail))
            rows.append(row)
        return self.table(rows)
