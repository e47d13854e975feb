"""The signals stage on real media with real models (Silero VAD, Whisper tiny.en, MediaPipe's
face mesh and BlazePose): speech and transcripts, lip sync, framing and pose visibility."""

from __future__ import annotations

import subprocess

import pyarrow as pa
import pytest
from helpers import REPO, whole_file_clip

from curation.core import schemas
from curation.core.worker import Worker
from stages.signals import SignalsConfig, SignalsStage

ASSETS = REPO / "tests" / "assets"
TALKING = ASSETS / "videos" / "derived_talking_obama_910x1136.mp4"


@pytest.fixture(scope="module")
def signals() -> SignalsStage:
    stage = SignalsStage(cfg=SignalsConfig(frames=6))
    stage.bind(schemas.CLIPS)  # straight after the cut: no boxes columns
    stage.setup(Worker.local())
    return stage


def run(stage: SignalsStage, *paths) -> list[dict]:
    rows = [whole_file_clip(p) for p in paths]
    return stage.process(pa.Table.from_pylist(rows, schema=schemas.CLIPS)).to_pylist()


def remux(tmp_path, name: str, audio: list[str], *extra: str):
    """The talking head's frames with another sound: `audio` are ffmpeg input arguments."""
    out = tmp_path / name
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(TALKING), *audio, "-map", "0:v",
                    "-map", "1:a", "-c:v", "copy", "-c:a", "aac", *extra, str(out)],
                   check=True)  # fmt: skip
    return out


def test_speech_is_found_and_transcribed_with_word_times(signals):
    (row,) = run(signals, TALKING)
    assert row["kept"] and row["signal_models"].startswith("vad=silero asr=bundled:tiny.en")
    assert 4.5 <= row["speech_s"] <= 6.0  # the sentence, between 0.6 s of silence each side
    segments = row["speech_segments"]
    assert segments[0][0] == pytest.approx(0.6, abs=0.1) and segments[-1][1] < 6.7
    text = row["transcript"].lower()
    assert all(w in text for w in ("morning", "weather", "clear", "warm", "walk", "market"))
    words = row["transcript_words"]
    assert [w["start_s"] for w in words] == sorted(w["start_s"] for w in words)
    assert (
        # Whisper reads each speech span with 0.2 s either side; its word times are that coarse.
        segments[0][0] - 0.3 <= words[0]["start_s"] and words[-1]["end_s"] <= segments[-1][1] + 0.3
    )
    assert row["transcript_language"] == "en"


def test_no_speech_in_music_silence_or_without_a_track(signals, videos, tmp_path):
    silent = remux(tmp_path, "silent.mp4", ["-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono"],
                   "-shortest")  # fmt: skip
    music, quiet, mute = run(signals, videos / "moviepy_chaplin.mp4", silent,
                             videos / "intel_asl_book.mkv")  # fmt: skip
    assert music["has_audio"] and quiet["has_audio"] and not mute["has_audio"]
    for row in (music, quiet, mute):
        assert row["speech_s"] == 0.0 and row["speech_segments"] == []
        assert row["transcript"] is None and row["lip_sync"] is None


def test_the_speakers_own_voice_syncs_better_than_someone_elses(signals, tmp_path):
    other = remux(tmp_path, "dubbed.mp4", ["-i", str(ASSETS / "derived_other_speech.m4a")])
    own, dubbed = run(signals, TALKING, other)
    assert dubbed["speech_s"] > 3  # the other voice is speech too: only the mouth tells
    assert own["lip_sync"] >= 0.6 and abs(own["lip_sync_offset_s"]) <= 0.08
    assert own["lip_sync"] - dubbed["lip_sync"] >= 0.3
    assert own["lip_sync_raw"] > dubbed["lip_sync_raw"]


def test_audio_a_second_late_is_found_at_that_offset(signals, tmp_path):
    late = remux(tmp_path, "late.mp4", ["-itsoffset", "1", "-i", str(TALKING)])
    own, shifted = run(signals, TALKING, late)
    assert shifted["lip_sync_offset_s"] == pytest.approx(1.0, abs=0.08)
    assert shifted["lip_sync"] >= 0.6
    # The speech itself is measured where it is: a second later on the clip's timeline.
    assert shifted["speech_segments"][0][0] == pytest.approx(
        own["speech_segments"][0][0] + 1.0, abs=0.1
    )


def test_framing_and_pose_visibility(signals, videos):
    head, signer, walkers, nature = run(
        signals,
        TALKING,
        videos / "intel_asl_book.mkv",
        videos / "moviepy_chaplin.mp4",
        videos / "psd_testvideo.mp4",
    )
    assert head["framing"] == "close_up"
    assert signer["framing"] == "half_body"
    assert walkers["framing"] == "full_body" and walkers["pose_visible"] >= 0.6
    assert nature["framing"] == "none" and nature["pose_visible"] == 0.0
    assert head["pose_visible"] < walkers["pose_visible"]
    assert walkers["pose_layout"] == "blazepose33"
    frames = walkers["keypoints"]
    assert len(frames) == 6 and all(len(f["points"]) == 33 for f in frames)
    assert all(0 <= p["visibility"] <= 1 for f in frames for p in f["points"])


def test_undecodable_audio_is_a_row_with_a_reason(signals, tmp_path):
    broken = tmp_path / "broken.mp4"
    data = TALKING.read_bytes()
    clip = whole_file_clip(TALKING)
    broken.write_bytes(data[: len(data) // 3])  # cut off: the moov atom is at the start
    bad = {**clip, "path": str(broken), "clip_id": "broken"}
    missing = {**clip, "path": str(tmp_path / "gone.mp4"), "clip_id": "gone"}
    rows = signals.process(pa.Table.from_pylist([clip, bad, missing], schema=schemas.CLIPS))
    good, cut_off, gone = rows.to_pylist()
    assert good["kept"]
    assert not gone["kept"] and gone["reject_reason"] == "decode_failed"
    assert cut_off["reject_reason"] in (None, "decode_failed")  # a prefix may still decode


def test_a_clip_whose_sound_the_scene_pass_found_damaged_is_rejected_unless_allowed(
    signals, videos, tmp_path
):
    from helpers import probed

    from bench import damaged
    from stages.scenes import ScenesConfig, ScenesStage

    broken = tmp_path / "sound.mp4"
    damaged.flip(videos / "moviepy_chaplin.mp4", broken, rate=1 / 100, kind="audio")
    (scene,) = ScenesStage(cfg=ScenesConfig()).split_source(probed(broken))
    assert scene["kept"] and scene["audio_damaged_s"] > 0.1  # the pictures are clean
    clip = {**whole_file_clip(broken), "audio_damaged_s": scene["audio_damaged_s"]}
    schema = schemas.CLIPS.append(pa.field("audio_damaged_s", pa.float64()))
    signals.bind(schema)
    try:
        (row,) = signals.process(pa.Table.from_pylist([clip], schema=schema)).to_pylist()
        assert (
            row["reject_reason"] == "corrupt_audio"
            and "could not be decoded" in row["reject_detail"]
        )
        signals.cfg = signals.cfg.model_copy(update={"max_damaged_audio_s": None})
        (row,) = signals.process(pa.Table.from_pylist([clip], schema=schema)).to_pylist()
        assert row["kept"] and row["speech_s"] is not None
    finally:
        signals.cfg = signals.cfg.model_copy(update={"max_damaged_audio_s": 0.1})
        signals.bind(schemas.CLIPS)
