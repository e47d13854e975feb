"""The in-process runner: stage after stage, shard after shard. For tests and debugging."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tqdm import tqdm

from curation.core.pool import SerialPool
from curation.core.units import Unit
from curation.core.worker import Worker
from curation.engine.global_task import run_global
from curation.engine.shard_task import Step, next_units, run_unit
from curation.engine.totals import Totals
from curation.rundir import RunDir

T = TypeVar("T")


@dataclass
class LocalRunner:
    progress: bool = True

    def prepare(self, steps: list[Step]) -> None:
        """Nothing to reserve: every stage runs here, on what this machine has."""

    def submit(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    def run(self, steps: list[Step], run: RunDir, units: list[Unit], totals: Totals) -> None:
        worker = Worker.local()
        for step in steps:
            if step.stage.is_global:
                for stats in run_global(run, step, units, SerialPool(self.progress)):
                    totals.add(stats)
                continue
            following: list[Unit] = []
            try:
                for unit in tqdm(units, desc=step.stage.name, unit="shard",
                                 disable=not self.progress):  # fmt: skip
                    stats = run_unit(run, step, unit, worker)
                    totals.add(stats)
                    following += next_units(step, unit, stats)
            finally:
                step.stage.teardown()  # models go as soon as their stage is done
            units = following
