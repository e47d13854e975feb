"""The embed stage with the real MiniLM model: unit vectors stored at the configured precision,
no vector for a clip without a caption, and the column read back as dedup reads it."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.core import schemas
from curation.core.worker import Worker
from curation.storage import Storage
from stages.embed import EMBEDDING, EmbedConfig, EmbedStage, read_embeddings

CAPTIONS = [
    "A woman in a red apron is chopping vegetables in a bright kitchen.",
    None,
    "In a bright kitchen, a woman wearing a red apron is chopping vegetables.",
    "   ",
    "Two young men are playing basketball on an outdoor court.",
]


# What the embed stage reads, as brief_caption leaves it (other carried columns omitted).
CAPTIONS_SCHEMA = pa.schema(
    [pa.field("clip_id", pa.string(), nullable=False), pa.field("brief_caption", pa.string()),
     *schemas.VERDICT]
)  # fmt: skip


def captions_table() -> pa.Table:
    n = len(CAPTIONS)
    return pa.table(
        {"clip_id": [f"c{k}" for k in range(n)], "brief_caption": CAPTIONS, "kept": [True] * n,
         "reject_reason": [None] * n, "reject_detail": [None] * n},
        schema=CAPTIONS_SCHEMA,
    )  # fmt: skip


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_captions_become_unit_vectors_and_empty_ones_none(dtype, tmp_path):
    stage = EmbedStage(cfg=EmbedConfig(device="cpu", dtype=dtype))
    stage.bind(CAPTIONS_SCHEMA)
    stage.setup(Worker.local())
    out = stage.process(captions_table())
    assert out.schema.equals(stage.schema) and out.num_rows == len(CAPTIONS)
    assert out["kept"].to_pylist() == [True] * len(CAPTIONS)  # nobody is dropped here
    assert out["embed_model"].to_pylist()[1::2] == [None, None]
    # Stored (with the run's Parquet settings) and read back the way dedup reads it.
    storage = Storage.open(tmp_path)
    storage.write_table("part.parquet", out)
    column = pq.read_table(tmp_path / "part.parquet")[EMBEDDING]
    assert str(column.type.value_type) == {"float16": "halffloat", "float32": "float"}[dtype]
    vectors, present = read_embeddings(column)
    assert present.tolist() == [True, False, True, False, True]
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=2e-3)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.9 > 0.3 > sims[0, 2]  # the paraphrase, and the other scene
