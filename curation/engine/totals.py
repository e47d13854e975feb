"""Per-stage totals of a run, summed from the statistics each shard carries back.

The runners never bring rows to the driver, only each finished shard's statistics (a few
numbers), and these are summed as they arrive: the driver's memory does not grow with the
number of clips.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageTotals:
    shards: int = 0
    rows_in: int = 0
    rows_out: int = 0
    kept: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    # A stage's own counts (stages/base.py with_extra): numbers are summed, mappings counted.
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, stats: dict[str, Any]) -> None:
        self.shards += 1
        self.rows_in += int(stats.get("rows_in", 0))
        self.rows_out += int(stats.get("rows_out", 0))
        self.kept += int(stats.get("kept", 0))
        self.rejected.update(stats.get("rejected", {}))
        self.seconds += float(stats.get("seconds", 0.0))
        for key, value in (stats.get("extra") or {}).items():
            if isinstance(value, dict):
                self.extra.setdefault(key, Counter()).update(value)
            else:
                self.extra[key] = self.extra.get(key, 0) + value

    def summary(self, folder: str, status: str) -> dict[str, Any]:
        return {
            "folder": folder,
            "status": status,
            "shards": self.shards,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "kept": self.kept,
            "rejected": dict(sorted(self.rejected.items())),
            "work_s": round(self.seconds, 3),
            **({"extra": {k: dict(sorted(v.items())) if isinstance(v, Counter) else v
                          for k, v in sorted(self.extra.items())}} if self.extra else {}),
        }  # fmt: skip


@dataclass
class Totals:
    stages: dict[str, StageTotals] = field(default_factory=dict)
    # Folders that lost shards (or went stale) because a shard they were made from changed.
    invalidated: set[str] = field(default_factory=set)

    def add(self, stats: dict[str, Any]) -> None:
        self.stages.setdefault(stats["stage"], StageTotals()).add(stats)
        self.invalidated.update(stats.get("invalidated", ()))

    def get(self, stage: str) -> StageTotals:
        return self.stages.get(stage, StageTotals())
