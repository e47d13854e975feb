"""Detailed captions from several models on one clip: a local tiny VLM and a real HTTP server."""

from __future__ import annotations

import pickle

import pyarrow as pa
from chat_server import ChatServer
from helpers import whole_file_clip

from curation.backends import BackendConfig
from curation.core import schemas
from curation.core.worker import Worker
from stages.detailed_caption import CaptionerConfig, DetailedCaptionConfig, DetailedCaptionStage


def captioner(name: str, **backend) -> CaptionerConfig:
    return CaptionerConfig(name=name, backend=BackendConfig(**backend), frames=3, max_side=112)


def test_every_model_writes_a_candidate_and_failures_are_recorded(videos, tiny_models):
    clip = whole_file_clip(videos / "intel_asl_book.mkv")
    table = pa.Table.from_pylist([clip], schema=schemas.CLIPS)
    local = {"model": str(tiny_models["qwen2-vl"]), "device": "cpu", "temperature": 1.0,
             "max_tokens": 16}  # fmt: skip
    with ChatServer(tiny_models["qwen2-vl"]) as server:
        served = {"kind": "openai", "model": "tiny", "base_url": server.url, "retries": 0}
        stage = DetailedCaptionStage(cfg=DetailedCaptionConfig(
            prompt="Describe the video.", attempts=2,
            models=[captioner("a", seed=1, **local), captioner("b", seed=2, **local),
                    captioner("served", **served)],
        ))  # fmt: skip
        stage.bind(schemas.CLIPS)
        stage.setup(Worker.local())
        (row,) = stage.process(table).to_pylist()
        assert row["kept"] and row["candidates_ok"] == 3
        assert [c["model"] for c in row["candidates"]] == ["a", "b", "served"]
        assert all(c["text"] and c["attempts"] == 1 for c in row["candidates"])
        assert row["candidates"][0]["text"] != row["candidates"][1]["text"]  # seeds differ
        assert len(server.requests) == 1
        shipped = pickle.loads(pickle.dumps(stage))  # as to a Ray worker: no models, no clients
        assert shipped._backends == {} and len(stage._backends) == 3

        server.mode = "error"
        stage.cfg.min_candidates = 3
        (row,) = stage.process(table).to_pylist()
        served_row = row["candidates"][2]
        assert served_row["text"] is None and "HTTP 500" in served_row["error"]
        assert served_row["attempts"] == 2  # retried, then recorded
        assert not row["kept"] and row["reject_reason"] == "too_few_candidates"
        assert row["reject_detail"].startswith("2 usable of 3")
