"""Shards: the units of work and of resume, and how they are named.

The source list is cut into shards of `run.shard_size` sources (`00003`). Probe and the
scene split work on those. The scene split turns one source into many clips, so one shard
of long sources would hold one worker through every later stage: its kept clips are re-cut
into pieces of at most `run.clips_per_shard` clips (`00003-00001`: the second piece of
source shard 3), and every later stage works on pieces. A piece is a fixed slice of the
kept rows of its source shard's scenes file, so it is the same on every run and resume.

A stage writes one file per shard, `<folder>/part-<key>.parquet`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True, order=True)
class Unit:
    shard: int  # the source shard
    piece: int | None = None  # which piece of its clips; None before the scene split

    @property
    def key(self) -> str:
        return f"{self.shard:05d}" if self.piece is None else f"{self.shard:05d}-{self.piece:05d}"

    @classmethod
    def parse(cls, key: str) -> Unit:
        head, _, tail = key.partition("-")
        return cls(int(head), int(tail) if tail else None)

    def pieces(self, kept: int, per_piece: int) -> list[Unit]:
        """The pieces a source shard with `kept` clips is cut into."""
        return [Unit(self.shard, j) for j in range(math.ceil(kept / per_piece))]

    def slice_of(self, table: pa.Table, per_piece: int) -> pa.Table:
        """This piece's rows of its source shard's kept rows."""
        assert self.piece is not None
        return table.slice(self.piece * per_piece, per_piece)


def file_name(unit: Unit) -> str:
    return f"part-{unit.key}.parquet"


def unit_of(file: str) -> Unit | None:
    """The shard a file name belongs to (None for anything that is not a shard file)."""
    if not (file.startswith("part-") and file.endswith(".parquet")):
        return None
    try:
        return Unit.parse(file[len("part-") : -len(".parquet")])
    except ValueError:
        return None
