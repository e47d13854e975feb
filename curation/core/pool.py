"""Independent tasks, run one after another here or as Ray tasks on a cluster.

A global stage (curation/engine/global_task.py) hands its work to a `Pool` as lists of tasks: a
module-level function and one picklable item a task. `SerialPool` runs them in this process
(the local runner); `curation.engine.runners.ray_pool.RayPool` as Ray tasks (the Ray runner).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from tqdm import tqdm

A = TypeVar("A")
R = TypeVar("R")


class Pool(Protocol):
    """Runs independent tasks: `fn` over `items`, results in the items' order."""

    def map(self, fn: Callable[[A], R], items: list[A], what: str) -> list[R]: ...


@dataclass
class SerialPool:
    """Every task in this process, one after another."""

    progress: bool = False

    def map(self, fn: Callable[[A], R], items: list[A], what: str) -> list[R]:
        return [fn(x) for x in tqdm(items, desc=what, unit="task", disable=not self.progress)]
