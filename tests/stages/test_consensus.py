"""The dual check on hand-written candidate captions: the real embedding model scores them."""

from __future__ import annotations

import pytest

from curation.backends import BackendConfig, Generation
from curation.consensus import ConsensusScorer, split_units
from curation.embed import BUNDLED_MINILM, CaptionEmbedder
from stages.consensus import ConsensusConfig, ConsensusStage

CANDIDATES = [
    "A woman with long black hair sits at a wooden desk in a bright office. She smiles and "
    "talks to the camera while gesturing with her right hand. A red umbrella leans against the "
    "wall behind her.",
    "A young woman with black hair is seated at a desk in an office. She is smiling and "
    "speaking toward the camera, moving her right hand as she talks. She wears a grey sweater.",
    "In a well-lit office, a woman with dark hair sits behind a desk. She talks to the viewer "
    "with a friendly smile and gestures with one hand. A laptop is open in front of her.",
]
SHARED = (
    "A woman with black hair sits at a desk in an office. She smiles and talks to the camera, "
    "gesturing with her hand."
)
ONE_ONLY = [
    SHARED + " A red umbrella leans against the wall behind her.",
    SHARED + " She wears a grey sweater and a laptop is open in front of her.",
]


@pytest.fixture(scope="module")
def scorer() -> ConsensusScorer:
    embedder = CaptionEmbedder(BUNDLED_MINILM, "cpu")
    embedder.load()
    return ConsensusScorer(embedder)


def test_clauses_split_joined_details():
    assert split_units("She wears a grey sweater and a laptop is open in front of her.") == [
        "She wears a grey sweater",
        "a laptop is open in front of her",
    ]


def test_agreement_separates_shared_from_single_source_details(scorer):
    shared = scorer.agreement(SHARED, CANDIDATES)
    assert shared.supported == shared.sentences
    for text in ONE_ONLY:
        padded = scorer.agreement(text, CANDIDATES)
        assert padded.supported < padded.sentences
        assert padded.score < shared.score - 0.1


def test_extractive_consensus_keeps_shared_details_and_drops_single_ones(scorer):
    merged = scorer.extractive_consensus(CANDIDATES).lower()
    for shared in ("black hair", "desk", "camera"):
        assert shared in merged
    for single in ("umbrella", "sweater", "laptop"):
        assert single not in merged
    assert scorer.agreement(merged, CANDIDATES).score >= 0.6


def consensus_stage(**settings) -> ConsensusStage:
    defaults = {
        "backend": BackendConfig(model="unused"), "prompt": "{captions}",
        "embedder": BUNDLED_MINILM, "device": "cpu", "refusal_markers": ["I'm sorry"],
    }  # fmt: skip
    return ConsensusStage(cfg=ConsensusConfig(**{**defaults, **settings}))


def clip(i: int) -> dict:
    return {
        "clip_id": f"c{i}", "source_id": "s", "path": "p", "kept": True,
        "candidates": [{"model": f"m{k}", "text": t} for k, t in enumerate(CANDIDATES)],
    }  # fmt: skip


def test_consensus_verdicts_from_llm_answers():
    stage = consensus_stage()
    prompt = stage.prompt_for(clip(0), []).text
    assert prompt.count("Description ") == 3 and CANDIDATES[1] in prompt
    answers = [
        (Generation(text=SHARED), 1),
        (Generation(text=ONE_ONLY[0]), 1),
        (Generation(text="  "), 3),
        (Generation(text="I'm sorry, I can't help with that."), 3),
        (Generation(error="HTTP 500"), 3),
    ]
    assert stage.cfg.min_agreement == 0.75  # the default: between the two scores above
    rows = stage.finish([clip(i) for i in range(5)], [answers]).to_pylist()
    assert [r["reject_reason"] for r in rows] == [
        None, "unsupported_consensus", "empty_consensus", "refused", "consensus_failed",
    ]  # fmt: skip
    assert rows[0]["consensus"] == SHARED and rows[0]["agreement"] > 0.75
    assert rows[1]["consensus"] == ONE_ONLY[0]  # kept for inspection, with the reason
    assert rows[0]["consensus_model"] == "unused" and rows[0]["consensus_attempts"] == 1
    assert "consensus_failed" in stage.retryable_reasons


def test_extractive_method_needs_no_llm():
    stage = consensus_stage(method="extractive")
    assert stage.calls() == [] and [g.calls for g in stage.model_groups()] == [
        ()
    ]  # one worker finishes
    (row,) = stage.finish([clip(0)], []).to_pylist()
    assert row["kept"] and row["consensus_model"] == "extractive"
    assert "umbrella" not in row["consensus"] and row["agreement"] >= 0.6
