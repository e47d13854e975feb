"""The temporal filter on real scene rows: the static photo video goes, signing stays."""

import pyarrow as pa
from helpers import probed

from curation.config import ScenesConfig, TemporalConfig
from stages.scenes import ScenesStage
from stages.temporal_filter import TemporalFilterStage


def scene_rows(videos, names):
    stage = ScenesStage(cfg=ScenesConfig())
    rows = [r for n in names for r in stage.split_source(probed(videos / n))]
    return pa.Table.from_pylist(rows, schema=stage.schema)


def test_static_is_rejected_and_motion_is_kept(videos):
    rows = scene_rows(
        videos, ["derived_static_obama_910x1136.mp4", "intel_asl_book.mkv", "intel_asl_again.mkv"]
    )
    out = TemporalFilterStage(cfg=TemporalConfig()).process(rows).to_pylist()
    static, book, again = out
    assert (static["kept"], static["reject_reason"], static["temporal_verdict"]) == (
        False,
        "static",
        "static",
    )
    assert book["kept"] and again["kept"]
    assert book["temporal_verdict"] == again["temporal_verdict"] == "ok"


def test_chaotic_clips_are_rejected_and_score_only_keeps_everything(videos):
    rows = scene_rows(videos, ["derived_static_obama_910x1136.mp4", "intel_asl_again.mkv"])
    strict = (
        TemporalFilterStage(cfg=TemporalConfig(max_keyframes_per_s=1.0)).process(rows).to_pylist()
    )
    assert [r["reject_reason"] for r in strict] == ["static", "chaotic"]
    assert "keyframes/s" in strict[1]["reject_detail"]
    scored = TemporalFilterStage(cfg=TemporalConfig(max_keyframes_per_s=1.0, score_only=True))
    out = scored.process(rows).to_pylist()
    assert all(r["kept"] and r["reject_reason"] is None for r in out)
    assert [r["temporal_verdict"] for r in out] == ["static", "chaotic"]
