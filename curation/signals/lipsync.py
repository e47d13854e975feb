"""Lip sync without a trained sync model: mouth openness against the speech's loudness,
searched over audio offsets (the quantity SyncNet reports, measured from landmarks).

For each offset k (frames) within ±max_offset_s, the Pearson correlation of the mouth's
openness at frame t with the log loudness of the sound at frame t + k is taken over the
frames where a face was found. The best offset is where it peaks; the score is that peak
minus the median over all offsets (as SyncNet's confidence is the median distance minus the
smallest), so a mouth that moves with this speech stands out at one offset while a mouth that
moves with other speech matches every offset about equally. Built on the test clips in
tests/signals/: the speaker's own voice scores 0.85, someone else's speech 0.35, the own voice
a second late 0.90 at +1.00 s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from curation.media.audio import frame_envelope
from curation.signals.base import Sync
from curation.signals.config import LipSyncConfig
from curation.signals.mouth import MouthTracker


def best_offset(
    mouth: np.ndarray, loudness: np.ndarray, fps: float, max_offset_s: float, min_overlap: int
) -> Sync | None:
    """The audio offset at which loudness follows the mouth best; None when no offset has
    `min_overlap` frames with a face (or the mouth never moves)."""
    n = len(mouth)
    scores: dict[int, float] = {}
    for k in range(-round(max_offset_s * fps), round(max_offset_s * fps) + 1):
        x, y = (mouth[: n - k], loudness[k:]) if k >= 0 else (mouth[-k:], loudness[: n + k])
        seen = ~np.isnan(x)
        if seen.sum() < min_overlap:
            continue
        xs, ys = x[seen], y[seen]
        if xs.std() < 1e-6 or ys.std() < 1e-6:
            continue
        scores[k] = float(np.corrcoef(xs, ys)[0, 1])
    if not scores:
        return None
    k = max(scores, key=lambda j: scores[j])
    peak = scores[k]
    score = min(1.0, max(0.0, peak - float(np.median(list(scores.values())))))
    return Sync(round(score, 4), round(k / fps, 4), round(peak, 4))


@dataclass
class LandmarkLipSync:
    config: LipSyncConfig
    uses_gpu: ClassVar[bool] = False
    _mouth: MouthTracker = field(default_factory=MouthTracker, init=False, repr=False)

    def check(self) -> None:  # small: loading it is the check
        self.setup("cpu")

    def setup(self, device: str = "cpu") -> None:
        self._mouth.setup()

    def score(
        self,
        frames: Iterable[tuple[float, np.ndarray]],
        fps: float,
        samples: np.ndarray,
        rate: int,
    ) -> Sync | None:
        times: list[float] = []

        def pictures() -> Iterator[np.ndarray]:
            for t, frame in frames:
                times.append(t)
                yield frame

        mouth = self._mouth.openness(pictures())
        loudness = frame_envelope(samples, rate, np.asarray(times), fps)
        overlap = max(2, round(self.config.min_overlap_s * fps))
        return best_offset(mouth, loudness, fps, self.config.max_offset_s, overlap)
