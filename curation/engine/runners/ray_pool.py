"""A global stage's tasks as Ray tasks (the Pool of curation/dedup/scale.py on a cluster).

The coordinating task submits every task of a phase at once; Ray places them on whichever
nodes have the declared resources free, retries a task whose worker died (`max_retries`:
the tasks only read inputs and write whole files, so a retry changes nothing), and the
results come back in the items' order. While it waits, the coordinating task gives its own
CPU back to Ray (Ray does that for a task blocked in `ray.get`), so it costs no slot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tqdm import tqdm

log = logging.getLogger(__name__)
A = TypeVar("A")
R = TypeVar("R")


@dataclass
class RayPool:
    cpus: float = 1.0
    gpus: float = 0.0
    memory_gb: float | None = None
    max_retries: int = 3
    progress: bool = True  # a progress bar; without one, a log line every `report_s`
    report_s: float = 30.0

    def map(self, fn: Callable[[A], R], items: list[A], what: str) -> list[R]:
        import ray

        if not items:
            return []
        options: dict[str, Any] = {
            "num_cpus": self.cpus,
            "num_gpus": self.gpus,
            "max_retries": self.max_retries,
            "name": what.replace(" ", "_"),
        }
        if self.memory_gb:
            options["memory"] = self.memory_gb * 2**30
        task = ray.remote(fn).options(**options)
        started = time.perf_counter()
        refs = [task.remote(item) for item in items]
        index = {ref: k for k, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending, reported = list(refs), started
        with tqdm(total=len(refs), desc=what, unit="task", disable=not self.progress) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=self.report_s)
                for ref in done:
                    results[index[ref]] = ray.get(ref)
                bar.update(len(done))
                if not self.progress and time.perf_counter() - reported >= self.report_s:
                    reported = time.perf_counter()
                    log.info("%s: %d/%d task(s) done, %.0f s", what, len(refs) - len(pending),
                             len(refs), reported - started)  # fmt: skip
        log.info("%s: %d task(s) in %.1f s", what, len(refs), time.perf_counter() - started)
        return results
