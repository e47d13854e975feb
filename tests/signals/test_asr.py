"""Whisper's preflight check is cheap and names the setting; the bundled model transcribes."""

from __future__ import annotations

import pytest
from helpers import REPO

from curation.media.audio import RATE, read_audio
from curation.signals import SignalUnavailable, make_backend
from curation.signals.config import AsrConfig

TALKING = REPO / "tests" / "assets" / "videos" / "derived_talking_obama_910x1136.mp4"


def test_check_does_not_load_a_model_and_names_the_setting(tmp_path):
    make_backend("asr", AsrConfig()).check()  # the bundled tiny.en: its package is here
    (tmp_path / "model").mkdir()
    with pytest.raises(SignalUnavailable, match="no model.bin"):
        make_backend("asr", AsrConfig(model=str(tmp_path / "model"))).check()
    with pytest.raises(SignalUnavailable, match="signals.asr.model.*faster-whisper-large-v3"):
        make_backend("asr", AsrConfig(model="large-v3")).check()  # offline: no download


def test_the_bundled_model_transcribes_only_the_spans_it_is_given():
    asr = make_backend("asr", AsrConfig())
    samples = read_audio(str(TALKING), 0.0, 7.2)
    whole = asr.transcribe(samples, RATE, [(0.61, 6.27)])
    assert "market" in whole.text.lower() and whole.language == "en"
    start = asr.transcribe(samples, RATE, [(0.61, 1.4)])  # "Good morning." only
    assert "morning" in start.text.lower() and "market" not in start.text.lower()
    assert all(0.3 <= w.start_s <= w.end_s <= 1.7 for w in start.words)
