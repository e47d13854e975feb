"""Structured fields: random-weight models still give schema-valid JSON under constrained
decoding; a server whose output never parses is retried, then recorded as a failure."""

from __future__ import annotations

import json

import pyarrow as pa
from chat_server import ChatServer

from curation.backends import BackendConfig
from curation.core import schemas
from curation.core.worker import Worker
from curation.instructions.fields import FIELDS
from stages.structure import StructureConfig, StructureStage

CAPTION = "A woman with black hair smiles at the camera while sitting at a desk in an office."


def clips(n: int) -> pa.Table:
    rows = [{"clip_id": f"c{i}", "source_id": "s", "path": "p", "kept": True,
             "consensus": CAPTION} for i in range(n)]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=schemas.CONSENSUS)


def stage(backend: BackendConfig, **settings) -> StructureStage:
    return StructureStage(cfg=StructureConfig(backend=backend, **{"grounding": 0.0, **settings}))


def ready(structure: StructureStage) -> StructureStage:
    structure.setup(Worker.local())  # as a runner does in the worker
    return structure


def test_constrained_decoding_makes_random_weights_emit_valid_fields(tiny_models):
    backend = BackendConfig(model=str(tiny_models["qwen2"]), device="cpu", temperature=1.0,
                            max_tokens=640)  # fmt: skip
    rows = ready(stage(backend, max_field_chars=24, attempts=1)).process(clips(6)).to_pylist()
    for row in rows:  # first try, every clip: the grammar allows nothing else
        assert row["kept"] and row["fields_attempts"] == 1, row["reject_detail"]
        assert {g: set(v) for g, v in row["fields"].items()} == {
            g: set(keys) for g, keys in FIELDS.items()
        }
        lengths = [len(v) for group in row["fields"].values() for v in group.values()]
        # Bounded by the grammar (24 characters); a random byte-level model can end a value
        # inside a multi-byte character, which decodes to a few U+FFFD: hence the slack.
        assert max(lengths) <= 30, row["fields"]
    assert len({str(r["fields"]) for r in rows}) > 1  # sampled per clip, not one constant


def test_output_that_never_parses_is_retried_then_recorded(tiny_models):
    # The test server ignores response_format: its random text is not JSON.
    with ChatServer(tiny_models["qwen2-vl"]) as server:
        backend = BackendConfig(kind="openai", model="tiny", base_url=server.url, retries=0)
        (row,) = ready(stage(backend, attempts=2)).process(clips(1)).to_pylist()
        assert len(server.requests) == 2
        assert "response_format" in server.requests[0]
    assert not row["kept"] and row["reject_reason"] == "invalid_fields"
    assert row["fields"] is None and row["fields_attempts"] == 2
    assert "invalid_fields" in StructureStage.retryable_reasons


def test_values_the_caption_does_not_support_are_cleared_and_named():
    from curation.backends import Generation
    from curation.embed import BUNDLED_MINILM

    caption = (
        "A woman with long black hair sits at a wooden desk in a bright office. She smiles and "
        "talks to the camera while gesturing with her right hand. She wears a grey sweater."
    )
    answer = {
        "face": {"appearance": "long black hair", "expression": "smiling",
                 "emotion": "happy", "gaze": "looking at the camera"},
        "body": {"appearance": "", "clothing": "red baseball cap",
                 "action": "talking and gesturing", "pose": "sitting at a desk"},
        "interaction": {"with_people": "with two children", "with_objects": "playing guitar",
                        "environment": "a bright office"},
    }  # fmt: skip
    s = stage(BackendConfig(model="unused"), embedder=BUNDLED_MINILM, device="cpu", grounding=0.3)
    s.bind(schemas.CONSENSUS)
    table = clips(1).set_column(
        clips(1).schema.get_field_index("consensus"), "consensus", pa.array([caption])
    )
    (row,) = s.finish(table.to_pylist(), [[(Generation(text=json.dumps(answer)), 1)]]).to_pylist()
    assert row["kept"]
    assert sorted(row["fields_ungrounded"]) == [
        "body.clothing", "interaction.with_objects", "interaction.with_people",
    ]  # fmt: skip
    assert row["fields"]["body"]["clothing"] == "" and row["fields"]["face"]["emotion"] == "happy"
    assert row["fields"]["body"]["pose"] == "sitting at a desk"
