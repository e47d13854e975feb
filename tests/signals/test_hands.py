"""Hand shapes: MediaPipe Hands on real photos (two open hands, a thumbs up), and the shape
rules on made-up landmarks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import REPO

from curation.signals.hands import HandShape, MediapipeHands, hand_shape

STILLS = REPO / "tests" / "assets" / "stills"


@pytest.fixture(scope="module")
def hands() -> MediapipeHands:
    model = MediapipeHands()
    model.setup()
    return model


def rgb(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(STILLS / name)), cv2.COLOR_BGR2RGB)


def test_open_hands_and_a_thumbs_up_on_real_photos(hands):
    # Two open hands, fingers spread: one held up, one hanging down.
    shapes = sorted(hands.shapes(rgb("tfjs_hands.jpg")), key=lambda h: h.wrist[0])
    assert [h.fingers for h in shapes] == [5, 5]
    up, down = shapes
    assert up.open_up and up.angle == pytest.approx(90, abs=30)
    assert not down.open_up and down.angle == pytest.approx(-90, abs=30)
    (thumb,) = hands.shapes(rgb("mediapipe_hand_thumb_up.jpg"))
    assert thumb.fingers == 1 and not thumb.open_up and thumb.score > 0.5
    assert hands.shapes(np.full((240, 320, 3), 128, np.uint8)) == []  # no hand in a grey frame


def open_hand(rotate: float = 0.0) -> np.ndarray:
    """21 landmarks of an open hand, fingers up (wrist at the origin, y down), turned by
    `rotate` degrees."""
    pts = [(0, 0)]
    pts += [(-0.25, -0.15), (-0.4, -0.3), (-0.5, -0.45), (-0.6, -0.6)]  # thumb out to the side
    for x in (-0.15, 0.0, 0.15, 0.3):  # index .. little: knuckle, joints, tip straight up
        pts += [(x, -0.5), (x, -0.7), (x, -0.85), (x, -1.0)]
    a = np.radians(rotate)
    turn = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    return np.array(pts) @ turn.T


def test_shape_rules_on_made_up_landmarks():
    assert hand_shape(open_hand()) == HandShape((0.0, 0.0), 5, pytest.approx(90.0), 1.0)
    assert hand_shape(open_hand()).open_up
    assert not hand_shape(open_hand(rotate=180)).open_up  # open, fingers down: held out
    fist = open_hand()
    for mid, tip in ((6, 8), (10, 12), (14, 16), (18, 20)):
        fist[tip] = fist[mid] * 0.8  # the tips curled back toward the palm
    fist[4] = fist[3] * 0.9 + fist[5] * 0.1  # the thumb across the fingers
    assert hand_shape(fist).fingers == 0 and not hand_shape(fist).open_up
