"""Pose backends on a real photo: BlazePose (real weights) and a YOLO pose model saved and
loaded by path (random weights: the released ones cannot be downloaded here)."""

from __future__ import annotations

import cv2
import pytest
from helpers import REPO

from curation.signals import SignalUnavailable, make_backend
from curation.signals.config import PoseConfig
from curation.signals.framing import pose_framing, pose_visible

SKIER = REPO / "tests" / "assets" / "stills" / "coco_000000000785.jpg"


def rgb(path):
    return cv2.imread(str(path))[:, :, ::-1].copy()


def test_blazepose_sees_the_whole_skier():
    model = make_backend("pose", PoseConfig())
    points = model.keypoints(rgb(SKIER))
    assert len(points) == 33 and model.layout == "blazepose33"
    assert pose_visible([points], model.body, 0.5) >= 0.9
    assert pose_framing(points, model.body, 0.5) == "full_body"
    # The skier's box (COCO): x 281..499, y 45..391 of 640x425; the joints fall inside it.
    inside = [
        p for p in (points[j] for j in model.body) if 0.40 <= p.x <= 0.80 and 0.08 <= p.y <= 0.95
    ]
    assert len(inside) >= 10


def test_yolo_pose_by_path_gives_coco_keypoints_and_refuses_a_detector(tmp_path):
    from ultralytics import YOLO

    weights = tmp_path / "pose-random.pt"
    YOLO("yolo11n-pose.yaml").save(str(weights))  # the architecture file, random weights
    model = make_backend("pose", PoseConfig(kind="ultralytics", model=str(weights),
                                            score_threshold=1e-4, device="cpu"))  # fmt: skip
    model.setup("cpu")
    points = model.keypoints(rgb(SKIER))
    assert model.layout == "coco17" and len(points) == 17
    assert all(0.0 <= p.visibility <= 1.0 for p in points)
    detector = tmp_path / "detect-random.pt"
    YOLO("yolo11n.yaml").save(str(detector))
    with pytest.raises(SignalUnavailable, match="not pose"):
        make_backend("pose", PoseConfig(kind="ultralytics", model=str(detector))).setup("cpu")
    with pytest.raises(SignalUnavailable, match="signals.pose.model"):
        make_backend("pose", PoseConfig(kind="ultralytics", model="no-such-pose.pt")).setup("cpu")
