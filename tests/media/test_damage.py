"""Locating decode damage in time on real files damaged the ways files get damaged, and the
scene pass's verdicts on them where the time base is hard: a first GOP lost, a variable frame
rate, a sound whose decoder's error reads like a machine's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import probed

from bench import damaged
from bench.damaged import psnr
from curation.core.faults import MachineFault
from curation.media import damage
from stages.scenes import ScenesConfig, ScenesStage


def test_damage_runs_to_the_next_clean_keyframe_with_the_leading_pictures():
    # Decode order (pts, keyframe, bad): I0 P3 B1 B2 | I6(bad) P9 B7 B8 | I12 B10 B11 P15
    # The open GOP's B10 and B11 come after I12 but are shown before it: they may point back.
    packets = [(0, True, False), (3, False, False), (1, False, False), (2, False, False),
               (6, True, True), (9, False, False), (7, False, False), (8, False, False),
               (12, True, False), (10, False, False), (11, False, False), (15, False, False)]  # fmt: skip
    assert damage.video_spans(packets, 1.0) == [(6, 12)]
    # A bad P-frame: the B-frames decoded after it, shown before it, are damaged too.
    packets[1], packets[4] = (3, False, True), (6, True, False)
    assert damage.video_spans(packets, 1.0) == [(1, 4)]
    assert damage.merge([(1, 4), (4, 5), (7, 8)]) == [(1, 5), (7, 8)]


def test_a_killed_child_is_a_fault_of_the_machine(monkeypatch, tmp_path):
    def killed(command, **kwargs):
        return subprocess.CompletedProcess(command, -9, b"", b"")

    monkeypatch.setattr(damage.subprocess, "run", killed)
    with pytest.raises(MachineFault, match="out of memory"):
        damage.locate(str(tmp_path / "x.mp4"))


def test_a_sound_decoders_error_is_about_the_file_not_the_machine(videos, tmp_path):
    # AAC's catch-all decode error prints as "Operation not permitted", the words of EPERM.
    aac = tmp_path / "aac.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", f"file:{videos / 'moviepy_chaplin.mp4'}",
                    "-c:v", "copy", "-c:a", "aac", "-b:a", "96k", f"file:{aac}"], check=True)  # fmt: skip
    broken = tmp_path / "broken.mp4"
    damaged.flip(aac, broken, 1 / 100, kind="audio", seed=1)
    log = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", f"file:{broken}", "-map",
                          "0:a", "-f", "null", "-"], capture_output=True, text=True).stderr  # fmt: skip
    assert "operation not permitted" in log.lower()  # the case this test is about
    rows = ScenesStage(cfg=ScenesConfig()).split_source(probed(broken))
    assert all(r["kept"] for r in rows) and sum(r["audio_damaged_s"] for r in rows) > 0


def test_a_lost_first_gop_is_damage_at_the_start_not_a_shift(videos, tmp_path):
    clean = damaged.excerpt(videos / "intel_one-by-one-person-detection.mp4",
                            tmp_path / "clean.mp4", 6)  # fmt: skip
    first = next(p for p in damaged.packets(clean) if p["stream_index"] == 0)
    data = bytearray(clean.read_bytes())
    for i in range(int(first["pos"]) + 20, int(first["pos"]) + int(first["size"]), 7):
        data[i] ^= 0xFF  # the first keyframe destroyed: its GOP (1 s at 10 fps) never decodes
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    rows = ScenesStage(cfg=ScenesConfig()).split_source(probed(broken))
    assert (rows[0]["start_frame"], rows[0]["reject_reason"]) == (0, "corrupt_frames")
    assert rows[0]["end_frame"] >= 10 and "frame(s) lost" in rows[0]["decode_note"]
    kept = [r for r in rows if r["kept"]]
    whole = ScenesStage(cfg=ScenesConfig()).split_source(probed(clean))
    assert kept and kept[-1]["end_frame"] == whole[-1]["end_frame"]
    # The kept frames are where the cut will look for them: the original's same frames.
    for row in kept:
        got = frames_at(broken, row["start_s"], row["end_s"])
        want = frames_at(clean, row["start_s"], row["end_s"])
        assert len(got) == len(want) == row["end_frame"] - row["start_frame"]
        assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))


def test_a_variable_rate_source_keeps_its_clean_frames_and_no_damaged_one(videos, tmp_path):
    # The real film at 25 fps for 3 s, then every third frame: per-frame durations vary.
    vfr = tmp_path / "vfr.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", f"file:{videos / 'moviepy_chaplin.mp4'}",
                    "-vf", "select='lt(t,3)+not(mod(n,3))'", "-fps_mode", "vfr", "-an",
                    "-c:v", "libx264", "-g", "10", "-preset", "veryfast", f"file:{vfr}"],
                   check=True)  # fmt: skip
    broken = tmp_path / "broken.mp4"
    damaged.flip(vfr, broken, 1 / 300, span=(0.1, 0.2))
    source = probed(broken)
    assert source["vfr"]
    rows = ScenesStage(cfg=ScenesConfig()).split_source(source)
    decoded_frames = rows[0]["source_frames_decoded"]
    lost = int(rows[0]["decode_note"].split(" frame(s) lost")[0].rsplit(" ", 1)[-1])
    assert lost <= 131 - decoded_frames + 1  # the frames that never came out, not long ones
    assert any(r["reject_reason"] == "corrupt_frames" for r in rows)
    kept = [r for r in rows if r["kept"]]
    assert sum(r["end_s"] - r["start_s"] for r in kept) > 3  # the clean rest is kept
    # Frames are numbered by position on a variable-rate source (as the cut counts them):
    # the damaged file's k-th frame, found in the clean one by its timestamp.
    good, bad = dict(decoded(vfr)), decoded(broken)
    for row in kept:
        for k in range(row["start_frame"], row["end_frame"]):
            pts, frame = bad[k]
            assert psnr(good[pts], frame) > 40, (row["start_frame"], k)


def frames_at(path: Path, start: float, end: float) -> list[np.ndarray]:
    """The frames of `path` shown in [start, end), counted from the stream's start."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin = stream.start_time or 0
        return [f.to_ndarray(format="gray") for f in container.decode(stream)
                if start - 1e-6 <= (f.pts - origin) * stream.time_base < end - 1e-6]  # fmt: skip


def decoded(path: Path) -> list[tuple[int, np.ndarray]]:
    """Every frame that decodes, as (pts, grey frame), in display order."""
    out = []
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.video[0]):
            try:
                out.extend((f.pts, f.to_ndarray(format="gray")) for f in packet.decode())
            except av.error.FFmpegError:
                continue
    return sorted(out, key=lambda pf: pf[0])
