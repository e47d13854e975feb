"""Shard work on small synthetic stages: a retried row redoes exactly what was made from it,
past a global stage only the shards whose verdicts changed, and a model stage's answers
stay with their models whatever order their workers ran in."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from curation.backends import BackendConfig, Generation
from curation.core.units import Unit
from curation.core.worker import Worker
from curation.engine.runners.local import LocalRunner
from curation.engine.shard_task import answer_unit, finish_unit, plan_steps, prepare_unit
from curation.engine.totals import Totals
from curation.rundir import RunDir
from stages.base import Stage, kept, rejected
from stages.detailed_caption import CaptionerConfig, DetailedCaptionConfig, DetailedCaptionStage
from stages.temporal_filter import TemporalConfig

VERDICT = [pa.field("kept", pa.bool_(), nullable=False), pa.field("reject_reason", pa.string()),
           pa.field("reject_detail", pa.string())]  # fmt: skip


def schema(*names: str) -> pa.Schema:
    return pa.schema([pa.field("clip_id", pa.string(), nullable=False),
                      *[pa.field(n, pa.int64()) for n in names], *VERDICT])  # fmt: skip


@dataclass(kw_only=True)
class Flaky(Stage):
    """Doubles x; fails clip c3 (retryably) until its marker file exists."""

    name: ClassVar[str] = "flaky"
    output_folder: ClassVar[str] = "a"
    schema: ClassVar[pa.Schema] = schema("x", "y")
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "x")
    retryable_reasons: ClassVar[frozenset[str]] = frozenset({"busy"})
    cfg: TemporalConfig
    heal: str

    def process(self, batch: pa.Table) -> pa.Table:
        rows = []
        for r in batch.to_pylist():
            if r["clip_id"] == "c3" and not Path(self.heal).exists():
                rows.append({**r, "y": None, **rejected("busy", "try later")})
            else:
                rows.append({**r, "y": 2 * r["x"], **kept()})
        return self.table(rows)


@dataclass(kw_only=True)
class Parity(Stage):
    """Global: keeps the clips whose y is a multiple of 4 among all clips seen."""

    name: ClassVar[str] = "parity"
    output_folder: ClassVar[str] = "g"
    schema: ClassVar[pa.Schema] = schema("x", "y")
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "y")
    is_global: ClassVar[bool] = True
    cfg: TemporalConfig

    def decide(self, job, pool) -> list[int]:
        """Per shard, how many clips of the whole input it has seen before it (by tasks)."""
        sizes = pool.map(_sizes, [(job, b) for b in range(len(job.blocks))], "parity")
        flat = [n for block in sizes for n in block]
        return [sum(flat[:k]) for k in range(len(flat))]

    def decided(self, rows: pa.Table, decision: int) -> pa.Table:
        verdicts = [kept() if r["y"] % 4 == 0 else rejected("odd", "not a multiple of 4")
                    for r in rows.to_pylist()]  # fmt: skip
        assert decision >= 0
        return pa.Table.from_pylist(verdicts, schema=pa.schema(VERDICT))


def _sizes(args) -> list[int]:
    job, block = args
    return [job.read(u, ["clip_id"]).num_rows for u in job.blocks[block]]


@dataclass(kw_only=True)
class Copy(Stage):
    name: ClassVar[str] = "copy"
    output_folder: ClassVar[str] = "b"
    schema: ClassVar[pa.Schema] = schema("x", "y")
    reads: ClassVar[tuple[str, ...]] = ("clip_id",)
    cfg: TemporalConfig

    def process(self, batch: pa.Table) -> pa.Table:
        return self.table([{**r, **kept()} for r in batch.to_pylist()])


def test_a_retry_redoes_only_what_was_made_from_the_changed_rows(tmp_path):
    run = RunDir(tmp_path, "r")
    # Three shards of two clips; clip c3 (x=2: kept by the global stage) fails at first.
    for k in range(3):
        ids = [f"c{2 * k + j}" for j in range(2)]
        run.write_unit("in", Unit(k, 0), pa.table({"clip_id": ids, "x": [2 * k + 1, 2]}), {})
    heal = tmp_path / "healed"
    stages = [Flaky(cfg=TemporalConfig(), heal=str(heal)), Parity(cfg=TemporalConfig()),
              Copy(cfg=TemporalConfig())]  # fmt: skip
    for prev, stage in zip(stages, stages[1:], strict=False):
        stage.bind(prev.schema)
    steps = plan_steps(stages, "in", 64)
    assert steps[0].next_global == "g" and steps[1].downstream == ("b",)
    units = [Unit(k, 0) for k in range(3)]
    LocalRunner(progress=False).run(steps, run, units, Totals())
    assert "c3" not in run.read_folder("b")["clip_id"].to_pylist()  # failed: never got there
    before = {u: run.storage.local_path(run.shard_file("b", u)).stat().st_mtime_ns for u in units}

    heal.touch()
    totals = Totals()
    LocalRunner(progress=False).run(steps, run, units, totals)
    assert run.read_folder("a").filter(pc.equal(run.read_folder("a")["clip_id"], "c3"))[
        "y"
    ].to_pylist() == [4]
    assert "c3" in run.read_folder("b")["clip_id"].to_pylist()  # redone past the global stage
    after = {u: run.storage.local_path(run.shard_file("b", u)).stat().st_mtime_ns for u in units}
    assert [before[u] == after[u] for u in units] == [True, False, True]  # only shard 1
    assert not run.storage.exists("g/.stale")  # reconciled
    assert {"g", "b"} <= totals.invalidated


class Scripted:
    """A backend double: answers with its own name (parsing and ordering logic only)."""

    def __init__(self, name: str):
        self.name, self.calls = name, Counter()

    def generate(self, prompts):
        self.calls["n"] += len(prompts)
        return [Generation(text=f"said by {self.name}") for _ in prompts]


def test_answers_stay_with_their_models_whatever_order_their_workers_run(videos, tmp_path):
    from helpers import whole_file_clip

    from curation.core import schemas

    models = [CaptionerConfig(name="a", backend=BackendConfig(kind="vllm", model="va"), frames=2),
              CaptionerConfig(name="b", backend=BackendConfig(model="vb"), frames=2)]  # fmt: skip
    stage = DetailedCaptionStage(cfg=DetailedCaptionConfig(models=models, min_candidates=2))
    stage.bind(schemas.CLIPS)
    assert [g.calls for g in stage.model_groups()] == [
        (1,),
        (0,),
    ]  # b shares a worker, a (vLLM) has its own
    run = RunDir(tmp_path, "r")
    clip = whole_file_clip(videos / "intel_asl_book.mkv")
    run.write_unit("clips", Unit(0, 0), pa.Table.from_pylist([clip], schema=schemas.CLIPS), {})
    (step,) = plan_steps([stage], "clips", 64)
    flight = prepare_unit(run, step, Unit(0, 0))
    stage._backends = {0: Scripted("a"), 1: Scripted("b")}  # in place of loaded models
    for group in stage.model_groups():  # the order the Ray operators run in
        for index in group.calls:
            flight = answer_unit(step, flight, index, Worker.local())
    finish_unit(run, step, flight, Worker.local())
    (row,) = run.read_folder("detailed").to_pylist()
    assert [(c["model"], c["text"]) for c in row["candidates"]] == [
        ("a", "said by a"), ("b", "said by b"),
    ]  # fmt: skip
