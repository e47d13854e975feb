"""The offset search behind the landmark lip-sync score, on made-up series (parsing logic:
the real mouths and voices are in tests/stages/test_signals.py)."""

from __future__ import annotations

import numpy as np
import pytest

from curation.signals.lipsync import best_offset

FPS = 25.0


def speechlike(n: int, seed: int) -> np.ndarray:
    """Smoothed random bursts: syllables of loudness."""
    rng = np.random.default_rng(seed)
    return np.convolve(rng.random(n) ** 3, np.ones(4) / 4, mode="same")


def test_the_offset_of_a_delayed_copy_is_found_with_a_high_score():
    mouth = speechlike(300, 0)
    late = np.concatenate([np.zeros(10), mouth[:-10]])  # the sound 10 frames (0.4 s) late
    sync = best_offset(mouth, np.log(late + 1e-3), FPS, 1.0, 50)
    assert sync is not None and sync.offset_s == pytest.approx(0.4)
    assert sync.score > 0.5 and sync.raw > 0.8


def test_unrelated_series_score_low_and_missing_faces_are_skipped():
    mouth, other = speechlike(300, 1), speechlike(300, 2)
    assert best_offset(mouth, other, FPS, 1.0, 50).score < 0.3
    gaps = mouth.copy()
    gaps[::3] = np.nan  # frames without a face
    assert best_offset(gaps, mouth, FPS, 1.0, 50).offset_s == 0.0


def test_too_few_face_frames_or_a_still_mouth_give_no_score():
    mouth = np.full(300, np.nan)
    mouth[:30] = speechlike(30, 3)
    assert best_offset(mouth, speechlike(300, 4), FPS, 0.5, 50) is None
    assert best_offset(np.full(300, 0.1), speechlike(300, 5), FPS, 0.5, 50) is None


def test_speech_spans_join_close_segments_and_pad_within_the_clip():
    from curation.signals.asr import speech_spans

    segments = [(0.1, 1.0), (1.5, 2.0), (4.0, 5.9)]
    assert speech_spans(segments, 6.0) == [(0.0, 2.2), (3.8, 6.0)]
    assert speech_spans([], 6.0) == []
