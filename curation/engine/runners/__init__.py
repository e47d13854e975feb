"""Runners execute the pipeline's steps over the shards of a run: in-process or on Ray Data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from curation.core.units import Unit
from curation.engine.shard_task import Step
from curation.engine.totals import Totals
from curation.rundir import RunDir

T = TypeVar("T")


class Runner(Protocol):
    def prepare(self, steps: list[Step]) -> None:
        """Checks before any work: connect, and fail on a request nothing could meet."""

    def run(self, steps: list[Step], run: RunDir, units: list[Unit], totals: Totals) -> None:
        """Run the steps over the shards (finished ones are skipped), adding each shard's
        statistics to `totals`."""

    def submit(self, fn: Callable[..., T], *args: Any) -> T:
        """One piece of work that is not per shard (writing the exports), run by a worker."""
