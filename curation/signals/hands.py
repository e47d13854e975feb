"""Hand shapes by MediaPipe Hands (palm detector + 21-point hand landmarks, both in the
mediapipe 0.10.21 wheel), for the events stage: whether a raised hand is an open palm with its
fingers up (a stop gesture) or something else (a fist, a thumbs up, a hand held out palm up).

The 21 landmarks: 0 the wrist; thumb 1-4; index 5-8, middle 9-12, ring 13-16, little 17-20
(each finger: knuckle, middle joint, next joint, tip). A finger is extended when its tip is
farther from the wrist than its middle joint by a margin; the thumb when its tip is farther
from the little finger's knuckle than its own last joint and clear of the index knuckle. The
hand points where the wrist-to-middle-knuckle line does. Images are independent (static mode):
the stage looks only at the frames where a wrist is raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curation.signals.base import mediapipe_solution

FINGERS = ((6, 8), (10, 12), (14, 16), (18, 20))  # (middle joint, tip) of index..little
REACH = 1.1  # an extended finger's tip is this much farther from the wrist than its middle joint
UP_DEGREES = 45.0  # fingers up: the hand's axis within this of straight up in the image


@dataclass(frozen=True)
class HandShape:
    wrist: tuple[float, float]  # normalised image coordinates (x right, y down)
    fingers: int  # extended fingers, thumb included (0-5)
    angle: float  # the hand's axis, degrees from the image's +x toward up (90: fingers up)
    score: float  # the model's confidence that this is a hand

    @property
    def open_up(self) -> bool:
        """An open palm (five fingers out) with the fingers up: a stop gesture's hand."""
        return self.fingers == 5 and abs(self.angle - 90.0) <= UP_DEGREES


def hand_shape(points: np.ndarray, score: float = 1.0) -> HandShape:
    """The shape of one hand from its 21 (x, y) landmarks."""
    p = np.asarray(points, dtype=float)[:, :2]
    wrist = p[0]
    reach = np.linalg.norm(p - wrist, axis=1)
    fingers = sum(bool(reach[tip] > REACH * reach[mid]) for mid, tip in FINGERS)
    palm = np.linalg.norm(p[5] - p[17])
    thumb = (
        np.linalg.norm(p[4] - p[17]) > 1.05 * np.linalg.norm(p[3] - p[17])
        and np.linalg.norm(p[4] - p[5]) > 0.5 * palm
    )
    axis = p[9] - wrist
    angle = float(np.degrees(np.arctan2(-axis[1], axis[0])))
    return HandShape((float(wrist[0]), float(wrist[1])), fingers + int(thumb), angle, float(score))


@dataclass
class MediapipeHands:
    """Up to `max_hands` hands per image, each as a HandShape."""

    max_hands: int = 2
    min_confidence: float = 0.5
    _model: Any = field(default=None, init=False, repr=False)

    def setup(self) -> None:
        if self._model is not None:
            return
        Hands = mediapipe_solution("hands").Hands
        self._model = Hands(static_image_mode=True, max_num_hands=self.max_hands,
                            model_complexity=1, min_detection_confidence=self.min_confidence)  # fmt: skip

    def shapes(self, frame: np.ndarray) -> list[HandShape]:
        """The hands in one RGB frame."""
        self.setup()
        found = self._model.process(np.ascontiguousarray(frame))
        if not found.multi_hand_landmarks:
            return []
        return [
            hand_shape(np.array([[q.x, q.y] for q in marks.landmark]),
                       kind.classification[0].score)
            for marks, kind in zip(found.multi_hand_landmarks, found.multi_handedness, strict=True)
        ]  # fmt: skip
