"""A clip's sound on the clip's own timeline: late tracks keep their delay, in clip files too."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from helpers import REPO, clip_rows, probed

from curation.media.audio import RATE, clip_audio, read_audio
from curation.storage import Storage
from stages.cut import CutConfig, CutStage

TALKING = REPO / "tests" / "assets" / "videos" / "derived_talking_obama_910x1136.mp4"


def onset(samples: np.ndarray) -> float:
    """Seconds until the sound first rises above a whisper."""
    return float(np.argmax(np.abs(samples) > 0.02)) / RATE


def delayed(tmp_path, seconds: float):
    """The talking head with its audio track starting `seconds` late (container timestamps)."""
    out = tmp_path / f"late{seconds}.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(TALKING), "-itsoffset", str(seconds),
                    "-i", str(TALKING), "-map", "0:v", "-map", "1:a", "-c", "copy", str(out)],
                   check=True)  # fmt: skip
    return out


def test_exactly_duration_times_rate_samples_and_the_speech_where_it_is():
    samples = read_audio(str(TALKING), 0.0, 7.2)
    assert samples.dtype == np.float32 and samples.size == 7.2 * RATE
    assert onset(samples) == pytest.approx(0.61, abs=0.03)  # after the 0.6 s lead-in
    later = read_audio(str(TALKING), 0.3, 2.0)  # a window: the onset moves with it
    assert later.size == 2 * RATE and onset(later) == pytest.approx(0.31, abs=0.03)


def test_a_late_track_is_padded_not_pulled_forward(tmp_path):
    late = delayed(tmp_path, 1.0)
    assert probed(late)["audio_start_s"] == pytest.approx(1.0, abs=0.03)
    assert onset(read_audio(str(late), 0.0, 7.2)) == pytest.approx(1.61, abs=0.03)


def test_cut_clip_files_keep_the_delay_of_their_source(tmp_path):
    late = delayed(tmp_path, 1.0)
    rows = clip_rows(late, [(25, 150)])  # 1.0 s .. 6.0 s
    out = CutStage(cfg=CutConfig(), media=Storage.open(tmp_path / "media")).process(rows)
    (row,) = out.to_pylist()
    assert row["kept"], row["reject_detail"]
    virtual = {**row, "clip_path": None}
    from_file, from_source = clip_audio(row), clip_audio(virtual)
    assert from_file.size == from_source.size == 5 * RATE
    # The speech starts 0.61 s into the clip (1.61 s in the source, the clip starts at 1.0).
    assert onset(from_source) == pytest.approx(0.61, abs=0.03)
    assert onset(from_file) == pytest.approx(onset(from_source), abs=0.03)


def test_no_audio_track_is_silence_of_the_clip_length():
    row = {"has_audio": False, "start_s": 1.0, "end_s": 3.5, "path": "unused"}
    assert not clip_audio(row).any() and clip_audio(row).size == 2.5 * RATE
