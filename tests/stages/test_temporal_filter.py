"""The temporal filter on labelled clips made from the test media: stills are static, people
moving (even small in a wide shot) and camera moves are kept, strobes, montages and noise are
chaotic; the scores behind each verdict are asserted."""

import pyarrow as pa
import pytest
from helpers import probed

from bench.temporal_clips import CLIPS, build
from stages.scenes import ScenesConfig, ScenesStage
from stages.temporal_filter import TemporalConfig, TemporalFilterStage


@pytest.fixture(scope="module")
def judged(tmp_path_factory) -> dict[str, list[dict]]:
    """Every labelled clip through the scene pass and the temporal filter, defaults."""
    folder = tmp_path_factory.mktemp("temporal-clips")
    scenes = ScenesStage(cfg=ScenesConfig())
    out = {}
    for name in CLIPS:
        rows = scenes.split_source(probed(build(name, folder)))
        table = pa.Table.from_pylist(rows, schema=scenes.schema)
        out[name] = TemporalFilterStage(cfg=TemporalConfig()).process(table).to_pylist()
    return out


@pytest.mark.parametrize("name", list(CLIPS))
def test_each_labelled_clip_gets_its_label(judged, name):
    label = CLIPS[name][0]
    (row,) = judged[name]  # one segment each: montage and strobe shots are grouped
    assert row["temporal_verdict"] == label, row
    assert row["kept"] == (label == "ok")
    assert row["reject_reason"] == (None if label == "ok" else label)


def test_natural_motion_scores_nothing_chaotic(judged):
    for name in ("talking_head", "signer", "small_action", "walking_crowd", "landscape_pan",
                 "shaky_cam"):  # fmt: skip
        (row,) = judged[name]
        assert row["flash_rate"] == 0 and row["jump_rate"] == 0, name
        assert row["flicker"] < 0.15, (name, row["flicker"])
    # The signer a third of the frame high still makes keyframes (the old whole-frame measure
    # saw one); the pan and the crowd make many, which is no longer a reason to reject.
    assert judged["small_action"][0]["keyframes"] >= 5
    assert judged["landscape_pan"][0]["keyframe_rate"] > 12
    assert judged["walking_crowd"][0]["keyframe_rate"] > 12


def test_stills_have_one_keyframe(judged):
    for name in ("still", "still_grain"):
        (row,) = judged[name]
        assert row["keyframes"] == 1 and "min_keyframes 2" in row["reject_detail"]


def test_what_makes_each_chaotic_clip_chaotic(judged):
    strobe, montage, noise = (judged[n][0] for n in ("strobe", "fast_montage", "noise"))
    assert strobe["flash_rate"] > 10 and "flashes/s > max_flash_rate" in strobe["reject_detail"]
    # Shots of 5 frames: cuts the detector found (it waits 15 frames between two) and missed.
    assert montage["jump_rate"] > 3
    assert "jumps/s > max_jump_rate" in montage["reject_detail"]
    assert noise["flash_rate"] == noise["jump_rate"] == 0
    assert 0.45 < noise["flicker"] < 0.55  # white temporal noise: -(-0.5)
    assert "flicker > max_flicker" in noise["reject_detail"]


def test_score_only_keeps_everything_and_records_the_verdict(judged):
    rows = pa.Table.from_pylist(
        [judged["still"][0], judged["signer"][0], judged["noise"][0]],
        schema=ScenesStage.schema,  # the filter's own columns are written again
    )
    out = TemporalFilterStage(cfg=TemporalConfig(score_only=True)).process(rows).to_pylist()
    assert all(r["kept"] and r["reject_reason"] is None for r in out)
    assert [r["temporal_verdict"] for r in out] == ["static", "ok", "chaotic"]
