"""Frames with known face boxes, for the detector benchmark and tests: three photos and a
1920x1080 "crowd" of 30 faces of 20-90 px pasted onto a nature frame, whose boxes are known by
construction (each pasted face's box in its photo, moved and scaled with it).

Photo boxes: Obama and the astronaut as the shared media records them (a detector's regression
value, and the README's "near" box); the two faces of the two-people photo were found by
BlazeFace and checked by eye.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets"
Box = tuple[float, float, float, float]

FACES: dict[str, list[Box]] = {
    "face_recognition_obama.jpg": [(349, 142, 617, 409)],
    "face_recognition_two_people.jpg": [(243, 57, 413, 227), (789, 82, 962, 255)],
    "skimage_astronaut.png": [(177, 66, 272, 161)],
}


def photo(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(ASSETS / "stills" / name)), cv2.COLOR_BGR2RGB)


def crowd(faces: int = 30, seed: int = 0) -> tuple[np.ndarray, list[Box]]:
    """The composite crowd frame (RGB) and its face boxes."""
    rng = np.random.default_rng(seed)
    capture = cv2.VideoCapture(str(ASSETS / "videos" / "psd_testvideo.mp4"))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, background = capture.read()
    assert ok, "psd_testvideo.mp4 could not be read"
    canvas = cv2.resize(cv2.cvtColor(background, cv2.COLOR_BGR2RGB), (1920, 1080))
    sources = [(name, box) for name, boxes in FACES.items() for box in boxes]
    boxes: list[Box] = []
    placed: list[tuple[int, int, int, int]] = []
    for k in range(faces):
        name, (x1, y1, x2, y2) = sources[k % len(sources)]
        image = photo(name)
        w, h = x2 - x1, y2 - y1
        cx1, cy1 = max(0, int(x1 - 0.6 * w)), max(0, int(y1 - 0.6 * h))  # hair, neck, shoulders
        cx2, cy2 = min(image.shape[1], int(x2 + 0.6 * w)), min(image.shape[0], int(y2 + 0.6 * h))
        scale = rng.uniform(20, 90) / w  # the face's width in the crowd
        crop = cv2.resize(image[cy1:cy2, cx1:cx2], None, fx=scale, fy=scale,
                          interpolation=cv2.INTER_AREA)  # fmt: skip
        for _ in range(200):  # somewhere no other face is
            px = int(rng.uniform(0, 1920 - crop.shape[1]))
            py = int(rng.uniform(0, 1080 - crop.shape[0]))
            spot = (px, py, px + crop.shape[1], py + crop.shape[0])
            if all(spot[2] < q[0] or spot[0] > q[2] or spot[3] < q[1] or spot[1] > q[3]
                   for q in placed):  # fmt: skip
                break
        placed.append(spot)
        canvas[py : py + crop.shape[0], px : px + crop.shape[1]] = crop
        boxes.append((px + (x1 - cx1) * scale, py + (y1 - cy1) * scale,
                      px + (x2 - cx1) * scale, py + (y2 - cy1) * scale))  # fmt: skip
    return canvas, boxes


def labelled_faces() -> list[tuple[str, np.ndarray, list[Box]]]:
    """(name, RGB frame, face boxes) of every labelled frame."""
    frames = [(name, photo(name), boxes) for name, boxes in FACES.items()]
    image, boxes = crowd()
    return [*frames, ("crowd (30 faces of 20-90 px, 1920x1080)", image, boxes)]


def iou(a: Box, b: Box) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def matches(found: list[Box], truth: list[Box], at: float = 0.5) -> int:
    """True positives: found boxes matched one to one, best score first, at IoU >= `at`."""
    free = list(range(len(truth)))
    hits = 0
    for box in found:
        best = max(free, key=lambda k: iou(box, truth[k]), default=None)
        if best is not None and iou(box, truth[best]) >= at:
            free.remove(best)
            hits += 1
    return hits
