"""The stage table: every stage is declared once, on its class, and a stage added from this file
alone (its class, its config section, nothing edited elsewhere) runs in the pipeline, gets its
section validated, and shows in run.json and browse."""

from __future__ import annotations

import shutil
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pydantic import Field

from curation.browse.layout import open_layout
from curation.core.config import ConfigError, Resources, Section
from curation.engine.config import load_config
from curation.engine.pipeline import Pipeline
from curation.rundir import RunDir
from stages import registry
from stages.base import Stage, kept, rejected

DEFAULT = [
    "probe", "scenes", "temporal", "cut", "boxes", "signals", "events", "brief_caption",
    "embed", "dedup", "detailed_caption", "consensus", "structure",
]  # fmt: skip


def test_the_table_holds_every_stage_with_its_declaration():
    table = registry.stage_classes()
    assert registry.default_order() == DEFAULT
    assert set(table) == {*DEFAULT, "instructions"}
    assert not table["instructions"].curate  # `make instructions` runs it
    assert registry.folders()["cut"] == "clips" and registry.folders()["structure"] == "structured"
    for name, cls in table.items():
        assert cls.name == name
        assert issubclass(cls.config_class(), Section)
        assert (
            type(getattr(load_config(None), name)) is cls.config_class()
        )  # the section is keyed by name


def test_a_stage_that_runs_by_its_own_command_is_not_listed():
    with pytest.raises(ConfigError, match=r"unknown stage\(s\) \['instructions'\]"):
        load_config(None, ["stages=[probe, scenes, instructions]"])


def test_the_first_stage_must_read_the_source_list():
    with pytest.raises(ConfigError, match="the first stage must read only the source list"):
        load_config(None, ["stages=[scenes, temporal]"])


class ShoutConfig(Section):
    """The throw-away stage's settings."""

    min_duration_s: float = Field(2.0, gt=0, description="shorter clips are rejected")
    suffix: str = "!"
    resources: Resources = Resources(cpus=0.25, concurrency=1)


class ShoutStage(Stage):
    """Adds a column and rejects short clips: a filter like any other."""

    name: ClassVar[str] = "shout"
    output_folder: ClassVar[str] = "shouted"
    schema: ClassVar[pa.Schema] = pa.schema([])  # bind() fits it to the stage before
    adds: ClassVar[list[pa.Field]] = [pa.field("shout", pa.string())]
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "duration_s")

    cfg: ShoutConfig

    def process(self, batch: pa.Table) -> pa.Table:
        rows = []
        for row in batch.to_pylist():
            short = row["duration_s"] < self.cfg.min_duration_s
            verdict = rejected("too_quiet", f"{row['duration_s']:.2f} s") if short else kept()
            rows.append({**row, "shout": row["clip_id"].upper() + self.cfg.suffix, **verdict})
        return self.table(rows)


def test_a_stage_added_from_a_test_file_runs_in_the_pipeline(videos, tmp_path):
    sources = tmp_path / "videos"
    sources.mkdir()
    for name in ("derived_talking_obama_910x1136.mp4", "intel_asl_book.mkv"):
        shutil.copy(videos / name, sources / name)
    order = "stages=[probe, scenes, temporal, shout]"
    with registry.registered(ShoutStage):
        with pytest.raises(ConfigError, match="shout.suffix"):  # its section is validated
            load_config(None, [order, "shout.suffix=[1, 2]"])
        config = load_config(None, [order, "runner.kind=local", "runner.progress=false",
                                        "shout.suffix=-loud", "shout.min_duration_s=3"])  # fmt: skip
        run = RunDir(tmp_path / "runs", "shout")
        state = Pipeline(config, run).execute(sources)
        out = run.read_folder("shouted")
    temporal = run.read_folder("temporal")
    assert out.num_rows == pc.sum(temporal["kept"]).as_py() > 0  # every kept clip, once
    assert out.column_names[-4:] == ["shout", "kept", "reject_reason", "reject_detail"]
    for row in out.to_pylist():
        assert row["shout"] == row["clip_id"].upper() + "-loud"
        assert row["kept"] == (row["duration_s"] >= 3)
    assert state["stages"]["shout"]["folder"] == "shouted"
    assert state["config"]["shout"]["suffix"] == "-loud"
    assert [f.name for f in open_layout(run.storage).stages][-1] == "shouted"
    # Gone with its registration: no longer a stage, no longer a section.
    assert "shout" not in registry.stage_classes()
    with pytest.raises(ConfigError, match="unknown stage"):
        load_config(None, [order])


def test_two_stages_of_one_name_are_refused():
    class Probe2(ShoutStage):
        name: ClassVar[str] = "probe"

    with pytest.raises(ValueError, match="two stages are named 'probe'"):
        registry.register(Probe2)
