"""Which samples each worker sees at each step: a pure function of (seed, step, rank).

The global batch of step k is positions [k·G, (k+1)·G) of an endless stream of epochs, each a
permutation drawn from (seed, epoch). Worker r takes its contiguous share of G and splits it
into micro-batches. So one process and N workers see exactly the same global batches, and a
resumed run continues the same sequence from its step.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class StepBatchSampler:
    def __init__(
        self,
        num_samples: int,
        *,
        micro_batch_size: int,
        grad_accum: int,
        world_size: int = 1,
        rank: int = 0,
        seed: int = 0,
        shuffle: bool = True,
        start_step: int = 0,
        steps: int,
    ):
        if num_samples < 1:
            raise ValueError("no training samples")
        self.n = num_samples
        self.micro = micro_batch_size
        self.accum = grad_accum
        self.world = world_size
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        self.start_step = start_step
        self.steps = steps
        self._cached: tuple[int, np.ndarray] | None = None

    @property
    def global_batch(self) -> int:
        return self.micro * self.accum * self.world

    def _epoch(self, epoch: int) -> np.ndarray:
        # One permutation at a time is kept: a step's positions fall in one or two epochs.
        if self._cached is None or self._cached[0] != epoch:
            order = np.arange(self.n)
            if self.shuffle:
                order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            self._cached = (epoch, order)
        return self._cached[1]

    def positions(self, step: int) -> list[int]:
        """Sample indices of this worker's share of the global batch of `step`."""
        share = self.micro * self.accum
        start = step * self.global_batch + self.rank * share
        out = []
        for pos in range(start, start + share):
            epoch, offset = divmod(pos, self.n)
            out.append(int(self._epoch(epoch)[offset]))
        return out

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.steps):
            share = self.positions(step)
            for i in range(0, len(share), self.micro):
                yield share[i : i + self.micro]

    def __len__(self) -> int:
        return (self.steps - self.start_step) * self.accum
