"""Runners execute a list of stages over the shards of a run: in-process or on Ray Data."""

from __future__ import annotations

from typing import Protocol

from curation.rundir import RunDir
from stages.base import Stage


class Runner(Protocol):
    def run(self, steps: list[tuple[Stage, str]], run: RunDir, shards: list[int]) -> None:
        """Run each (stage, input folder) over every shard; finished shards are skipped."""
