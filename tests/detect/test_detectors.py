"""Face and person detectors on real photos with known boxes, and the production backends
(insightface, ultralytics) loaded from local files built here, since nothing downloads."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from helpers import REPO
from scrfd_fixture import build_random_scrfd

from curation.detect import DetectorConfig, DetectorUnavailable, make_detector

STILLS = REPO / "tests" / "assets" / "stills"
TRUTH = json.loads((REPO / "tests" / "assets" / "ground_truth.json").read_text())


def rgb(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(STILLS / name)), cv2.COLOR_BGR2RGB)


def iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def boxes(kind: str, name: str, **settings):
    detector = make_detector(DetectorConfig(kind=kind, **settings))
    return [(d.x1, d.y1, d.x2, d.y2, d.score) for d in detector.detect(rgb(name))]


@pytest.mark.parametrize("kind", ["dlib_hog", "opencv_haar"])
def test_face_detectors_on_stills(kind):
    obama = TRUTH["stills/face_recognition_obama.jpg"]["hog_box_xyxy"]
    found = boxes(kind, "face_recognition_obama.jpg")
    assert len(found) == 1 and iou(found[0], obama) >= 0.5
    assert len(boxes(kind, "face_recognition_two_people.jpg")) == 2
    astronaut = boxes(kind, "skimage_astronaut.png")
    assert len(astronaut) == 1
    assert iou(astronaut[0], (177, 66, 177 + 95, 66 + 95)) >= 0.5  # README's "near" box


def test_dlib_upsampled_reproduces_the_upstream_regression_box_exactly():
    from curation.detect.dlib_faces import DlibHogFaces

    # face_recognition upsamples once; so does our wrapper below this short side.
    detector = DlibHogFaces(DetectorConfig(kind="dlib_hog"), upsample_below=10_000)
    (face,) = detector.detect(rgb("face_recognition_obama.jpg"))
    assert [round(v) for v in (face.x1, face.y1, face.x2, face.y2)] == [349, 142, 617, 409]


def test_ssdlite_finds_the_coco_skier():
    x, y, w, h = TRUTH["stills/coco_000000000785.jpg"]["person_bbox_xywh"]
    found = boxes("ssdlite", "coco_000000000785.jpg")
    assert found and max(iou(b, (x, y, x + w, y + h)) for b in found) >= 0.5
    assert all(0.4 <= b[4] <= 1.0 for b in found)
    blank = make_detector(DetectorConfig(kind="ssdlite"))
    assert blank.detect(np.full((300, 400, 3), 127, np.uint8)) == []


def test_insightface_runs_a_scrfd_model_from_a_file_and_a_folder(tmp_path):
    onnx = build_random_scrfd(tmp_path / "pack" / "det_10g.onnx")
    for model in (str(onnx), str(onnx.parent)):
        found = boxes("insightface", "face_recognition_obama.jpg", model=model, device="cpu")
        assert found, "the random model fires on some anchors by construction"
        for x1, y1, x2, y2, score in found:
            assert x1 < x2 and y1 < y2 and 0.5 <= score <= 1.0
    black = make_detector(DetectorConfig(kind="insightface", model=str(onnx), device="cpu"))
    assert black.detect(np.zeros((480, 480, 3), np.uint8)) == []


def test_insightface_without_weights_fails_fast_and_says_what_to_do(tmp_path):
    detector = make_detector(DetectorConfig(kind="insightface", model=str(tmp_path / "no.onnx")))
    with pytest.raises(DetectorUnavailable, match="local SCRFD .onnx"):
        detector.setup()


def test_ultralytics_loads_weights_by_path_and_detects(tmp_path):
    from ultralytics import YOLO

    weights = tmp_path / "yolo-random.pt"
    YOLO("yolo11n.yaml").save(str(weights))  # the architecture file, random weights
    detector = make_detector(
        DetectorConfig(kind="ultralytics", model=str(weights), score_threshold=1e-4,
                       input_size=320, device="cpu")
    )  # fmt: skip
    found = detector.detect(rgb("coco_000000000785.jpg"))
    assert found and all(d.cls == "person" and d.x1 <= d.x2 and d.y1 <= d.y2 for d in found)


def test_ultralytics_offline_without_weights_fails_fast():
    detector = make_detector(DetectorConfig(kind="ultralytics", model="yolo-not-there.pt"))
    with pytest.raises(DetectorUnavailable, match="local .pt file"):
        detector.setup()


def test_opencv_hog_person_boxes_are_well_formed():
    for x1, y1, x2, y2, score in boxes("opencv_hog", "coco_000000000785.jpg", score_threshold=-1):
        assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 425 and np.isfinite(score)


def test_blazeface_on_tiles_finds_the_small_faces_of_a_crowd():
    from bench.labelled_frames import crowd, matches

    obama = TRUTH["stills/face_recognition_obama.jpg"]["hog_box_xyxy"]
    found = boxes("mediapipe", "face_recognition_obama.jpg")
    assert len(found) == 1 and iou(found[0], obama) >= 0.5
    assert len(boxes("mediapipe", "face_recognition_two_people.jpg")) == 2
    frame, truth = crowd()  # 30 faces of 20-90 px in 1920x1080

    def recall(**settings) -> float:
        detector = make_detector(DetectorConfig(kind="mediapipe", **settings))
        found = sorted(detector.detect(frame), key=lambda d: -d.score)
        hits = matches([(d.x1, d.y1, d.x2, d.y2) for d in found], truth)
        assert hits == len(found)  # nothing that is not a face
        return hits / len(truth)

    assert recall() < 0.3  # the whole frame at BlazeFace's 192 px: the faces vanish
    assert recall(tile=360) >= 0.9


def test_tiles_cover_the_frame_and_a_face_found_twice_counts_once():
    from curation.detect.base import Detection
    from curation.detect.tiling import merge, tiles

    grid = tiles(1920, 1080, 360)
    covered = np.zeros((1080, 1920), bool)
    for x1, y1, x2, y2 in grid:
        assert x2 - x1 <= 360 and y2 - y1 <= 360
        covered[y1:y2, x1:x2] = True
    assert covered.all() and tiles(300, 200, 360) == []
    a = Detection("face", 100, 100, 140, 150, 0.9)
    cut = Detection("face", 100, 100, 138, 130, 0.7)  # the same face cut by a tile's edge
    other = Detection("face", 400, 100, 440, 150, 0.8)
    assert merge([cut, a, other]) == [a, other]
