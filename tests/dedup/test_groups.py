"""Semantic de-duplication: the real MiniLM model on hand-written captions, the partitioned
search against brute force, the grouping rules, and the `dedup-captions` command."""

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import run_cli

from curation.dedup.config import DedupConfig
from curation.dedup.groups import dedup_captions, deduplicate, exact_pairs, group_duplicates
from curation.dedup.scale import SearchParams, in_memory
from curation.embed import BUNDLED_MINILM, CaptionEmbedder, EmbedderUnavailable

THRESHOLD = DedupConfig().threshold

# Three paraphrases of each of two scenes, then scenes that share words but not content.
CAPTIONS = {
    "cook_1": "A woman in a red apron is chopping vegetables in a bright kitchen.",
    "cook_2": "In a bright kitchen, a woman wearing a red apron is chopping vegetables.",
    "cook_3": "A woman wearing a red apron chops vegetables in a brightly lit kitchen.",
    "hoops_1": "Two young men are playing basketball on an outdoor court.",
    "hoops_2": "Two young men play basketball on a court outdoors.",
    "hoops_3": "A pair of young men play a game of basketball outside.",
    "dancer": "A woman in a red dress is dancing on a stage under bright lights.",
    "pasta": "A man is cooking pasta in a kitchen.",
    "bench": "An elderly man reads a newspaper on a park bench.",
    "bike": "A child rides a bicycle down a quiet suburban street.",
    "hoops_indoor": "A crowd watches a professional basketball game in an arena.",
}


@pytest.fixture(scope="module")
def minilm():
    return CaptionEmbedder(BUNDLED_MINILM, device="cpu")


def table(captions, **extra):
    return pa.table({"clip_id": list(captions), "brief_caption": list(captions.values()), **extra})


def test_real_minilm_groups_paraphrases_and_separates_scenes(minilm):
    out = dedup_captions(table(CAPTIONS), minilm, THRESHOLD).to_pylist()
    by_id = {r["clip_id"]: r for r in out}
    # One of each paraphrase group survives; the others point at it.
    assert [r["clip_id"] for r in out if r["kept"]] == [
        "cook_1", "hoops_1", "dancer", "pasta", "bench", "bike", "hoops_indoor",
    ]  # fmt: skip
    pairs = [
        ("cook_2", "cook_1"),
        ("cook_3", "cook_1"),
        ("hoops_2", "hoops_1"),
        ("hoops_3", "hoops_1"),
    ]
    for dup, kept in pairs:
        assert by_id[dup]["duplicate_of"] == kept
        assert THRESHOLD <= by_id[dup]["similarity"] <= 1.0
    assert all(r["duplicate_of"] is None and r["similarity"] is None for r in out if r["kept"])


def test_the_default_merges_paraphrases_and_keeps_scenes_of_one_setting_apart(minilm):
    """On the labelled set (bench/dedup_quality.py): 46 scenes, four captions each, written
    in groups that share a setting, a subject or an action."""
    import json

    from helpers import REPO

    scenes = json.loads((REPO / "tests/assets/captions/paraphrases.json").read_text())["scenes"]
    captions = {f"{s['id']}/{k}": c for s in scenes for k, c in enumerate(s["captions"])}
    out = dedup_captions(table(captions), minilm, THRESHOLD).to_pylist()
    leader = {r["clip_id"]: r["duplicate_of"] or r["clip_id"] for r in out}
    assert all(leader[k].split("/")[0] == k.split("/")[0] for k in leader)  # no scene into another
    one_clip = sum(len({leader[f"{s['id']}/{k}"] for k in range(4)}) == 1 for s in scenes)
    assert one_clip >= 0.8 * len(scenes)
    # The example: a paraphrase of one scene, scored 0.72-0.88, merges at the default.
    a, b = "A woman with long brown hair talks to the camera in a bright kitchen.", (
        "In a sunny kitchen, a brown-haired woman speaks while facing the camera.")  # fmt: skip
    pair = dedup_captions(table({"a": a, "b": b}), minilm, THRESHOLD).to_pylist()
    assert pair[1]["duplicate_of"] == "a"


def test_the_best_clip_of_a_group_is_kept(minilm):
    captions = {k: CAPTIONS[k] for k in ("cook_1", "cook_2", "cook_3", "bench")}
    # Resolution x duration x keyframe rate: cook_3 is the largest.
    out = dedup_captions(
        table(
            captions,
            display_width=[640, 1280, 1920, 640],
            display_height=[480, 720, 1080, 480],
            duration_s=[5.0, 5.0, 5.0, 5.0],
            keyframe_rate=[1.0, 1.0, 1.0, 1.0],
        ),
        minilm,
        THRESHOLD,
    ).to_pylist()
    assert [r["kept"] for r in out] == [False, False, True, True]
    assert out[0]["duplicate_of"] == out[1]["duplicate_of"] == "cook_3"


def test_empty_captions_are_kept_and_never_compared(minilm):
    out = dedup_captions(
        pa.table({"clip_id": ["a", "b", "c"], "brief_caption": [None, "", CAPTIONS["bike"]]}),
        minilm,
        THRESHOLD,
    ).to_pylist()
    assert all(r["kept"] for r in out)


def test_unknown_model_offline_fails_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EmbedderUnavailable, match="HF_HUB_OFFLINE"):
        CaptionEmbedder("no-such-org/no-such-model", device="cpu").load()


def clustered(n, seed=0, topics=50, planted=300):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((topics, 64), dtype=np.float32)
    emb = (
        centers[rng.integers(0, topics, n)] * 0.12
        + rng.standard_normal((n, 64), dtype=np.float32) * 0.1
    )
    emb[-planted:] = (
        emb[rng.integers(0, n - planted, planted)]
        + rng.standard_normal((planted, 64)).astype(np.float32) * 0.02
    )
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


@pytest.mark.parametrize("coarse_size", [10**9, 2000], ids=["one-level", "two-level"])
def test_partitioned_search_matches_brute_force(coarse_size):
    emb = clustered(6000)
    truth = set(zip(*[a.tolist() for a in exact_pairs(emb, 0.9)[:2]], strict=True))
    params = SearchParams.of(DedupConfig(threshold=0.9, exact_max=1000, partition_size=300,
                                         coarse_size=1000))  # fmt: skip
    params = dataclasses.replace(params, coarse_size=coarse_size)  # three groups, or one
    found_i, found_j, sims = in_memory(emb, params)
    found = set(zip(found_i.tolist(), found_j.tolist(), strict=True))
    assert len(truth) >= 300
    assert len(found & truth) / len(truth) >= 0.99
    assert found <= truth  # every reported pair is real
    assert np.all(sims >= 0.9) and np.all(found_i < found_j)
    assert np.allclose(sims, np.einsum("ij,ij->i", emb[found_i], emb[found_j]), atol=1e-6)


def test_matrix_products_on_a_torch_device_find_the_same_pairs():
    """The GPU path (tasks that reserved a GPU) run here on torch's CPU device."""
    emb = clustered(4000, seed=2)
    params = SearchParams.of(DedupConfig(threshold=0.9, exact_max=1000, partition_size=250))
    numpy_pairs = in_memory(emb, params)
    torch_pairs = in_memory(emb, dataclasses.replace(params, torch_device="cpu"))
    assert len(numpy_pairs[0]) >= 200
    assert all(np.array_equal(a, b) for a, b in zip(numpy_pairs, torch_pairs, strict=True))


def test_deduplicate_is_deterministic_and_picks_the_partitioned_path():
    emb = clustered(3000, seed=1)
    a = deduplicate(emb, 0.9, exact_max=1000, partition_size=200)
    b = deduplicate(emb, 0.9, exact_max=1000, partition_size=200)
    exact = deduplicate(emb, 0.9)
    assert np.array_equal(a.duplicate_of, b.duplicate_of)
    assert np.array_equal(a.kept, exact.kept)


def test_moved_embedder_settings_name_their_new_place():
    with pytest.raises(ValueError, match="dedup.embedder is now embed.model"):
        DedupConfig(embedder="x")


def test_grouping_is_greedy_best_first_and_never_chains():
    # 0~1, 1~2 but not 0~2: with 0 best, 1 is its duplicate and 2 stays (not via 1).
    i, j, s = np.array([0, 1]), np.array([1, 2]), np.array([0.95, 0.93], np.float32)
    r = group_duplicates(3, i, j, s, quality=np.array([3.0, 2.0, 1.0]))
    assert r.kept.tolist() == [True, False, True] and r.duplicate_of.tolist() == [-1, 0, -1]
    # With 1 best, both others are its duplicates.
    r = group_duplicates(3, i, j, s, quality=np.array([1.0, 3.0, 2.0]))
    assert r.kept.tolist() == [False, True, False] and r.duplicate_of.tolist() == [1, -1, 1]
    assert r.similarity.tolist() == pytest.approx([0.95, float("nan"), 0.93], nan_ok=True)


def test_dedup_captions_command(tmp_path):
    src = tmp_path / "captions.parquet"
    pq.write_table(table(CAPTIONS), src)
    result = run_cli("dedup-captions", str(src), str(tmp_path / "out.parquet"))
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.column_names == ["clip_id", "kept", "duplicate_of", "similarity"]
    assert out.num_rows == len(CAPTIONS) and sum(out["kept"].to_pylist()) == 7
    assert "4 near-duplicates" in result.stdout
    pq.write_table(pa.table({"clip_id": ["a"]}), tmp_path / "bad.parquet")
    bad = run_cli(
        "dedup-captions", str(tmp_path / "bad.parquet"), str(tmp_path / "x.parquet"), check=False
    )
    assert bad.returncode == 2 and "brief_caption" in bad.stderr
    (tmp_path / "text.parquet").write_text("not parquet")
    for name in ("missing.parquet", "text.parquet"):  # a clear error, not a traceback
        unread = run_cli("dedup-captions", str(tmp_path / name), str(tmp_path / "y.parquet"),
                         check=False)  # fmt: skip
        assert unread.returncode == 2 and f"cannot read {tmp_path / name}" in unread.stderr
        assert "Traceback" not in unread.stderr and not (tmp_path / "y.parquet").exists()
