"""Frame-accurate cutting: the counter video's frames carry their numbers, so every frame of a
clip is matched back to the source frame it came from."""

import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from helpers import clip_rows, ffprobe_json, make_video

from curation.media.ffmpeg import FrameStream
from curation.storage import Storage
from stages import cut as cut_module
from stages.cut import CutConfig, CutStage


def cutter(media, **settings) -> CutStage:
    return CutStage(cfg=CutConfig(**settings), media=Storage.open(media))


def small_frames(path):
    return np.stack([f.astype(np.float32) for f in FrameStream(str(path), 192, 108)])


@pytest.fixture
def counting_runs(monkeypatch):
    calls = []
    real_run = subprocess.run

    def run(cmd, *args, **kwargs):
        calls.append(cmd)
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(cut_module.subprocess, "run", run)
    return calls


def test_counter_clips_have_exactly_the_requested_frames(videos, tmp_path, counting_runs):
    source = videos / "psd_counter.mp4"
    ranges = [(0, 10), (7, 23), (25, 30)]
    out = cutter(tmp_path, threads=1).process(clip_rows(source, ranges))
    assert len(counting_runs) == 1  # one ffmpeg process for the whole source
    reference = small_frames(source)
    for row, (start, end) in zip(out.to_pylist(), ranges, strict=True):
        assert row["kept"] and row["cut_mode"] == "files", row["reject_detail"]
        stream = ffprobe_json(row["clip_path"])["streams"][0]
        assert int(stream["nb_read_frames"]) == end - start
        assert assert_frames_match(reference, row["clip_path"], start) == end - start


def test_audio_is_kept_and_aligned_in_length(tmp_path):
    source = make_video(tmp_path / "talk.mp4", seconds=3.0, fps=25, audio=True)
    out = cutter(tmp_path / "clips").process(clip_rows(source, [(10, 40), (40, 75)]))
    for row in out.to_pylist():
        info = ffprobe_json(row["clip_path"])
        kinds = {s["codec_type"]: s for s in info["streams"]}
        assert set(kinds) == {"video", "audio"}
        assert float(kinds["audio"]["duration"]) == pytest.approx(row["duration_s"], abs=0.05)
        assert int(kinds["video"]["nb_read_frames"]) == row["end_frame"] - row["start_frame"]


def test_virtual_mode_writes_nothing(videos, tmp_path):
    out = cutter(tmp_path, mode="virtual").process(clip_rows(videos / "psd_counter.mp4", [(0, 30)]))
    (row,) = out.to_pylist()
    assert row["kept"] and row["clip_path"] is None and row["cut_mode"] == "virtual"
    assert not any(tmp_path.iterdir())


def test_failed_cut_becomes_rejected_rows_without_partial_files(videos, tmp_path):
    rows = clip_rows(videos / "psd_counter.mp4", [(0, 10)])
    out = cutter(tmp_path, video_codec="no-such-codec").process(rows)
    (row,) = out.to_pylist()
    assert (
        not row["kept"]
        and row["reject_reason"] == "cut_failed"
        and "no-such-codec" in row["reject_detail"]
    )
    assert not list(tmp_path.rglob("*.mp4"))


def assert_frames_match(reference, clip_path, start):
    frames = small_frames(clip_path)
    for i, frame in enumerate(frames):
        errors = ((reference - frame) ** 2).mean(axis=(1, 2, 3))
        assert int(np.argmin(errors)) == start + i, (start, i)
    return len(frames)


@pytest.mark.parametrize("vfr", [False, True])
def test_far_apart_clips_are_seeked_and_still_frame_exact(tmp_path, counting_runs, vfr):
    source = make_video(tmp_path / "long.mp4", seconds=12.0, fps=25, audio=True)
    ranges = [(25, 50), (200, 260), (262, 270)]
    rows = clip_rows(source, ranges)
    # The variable-frame-rate path (one pass, trims by frame number) on the same file.
    rows = rows.set_column(rows.schema.get_field_index("vfr"), "vfr", pa.array([vfr] * len(ranges)))
    stage = cutter(tmp_path / "clips", seek_gap_s=2.0)
    assert len(stage.seek_groups(rows.to_pylist())) == (1 if vfr else 2)
    counting_runs.clear()  # making the source ran ffmpeg too
    out = stage.process(rows).to_pylist()
    # Each seek group is its own ffmpeg, run side by side; a VFR source is one pass.
    assert len(counting_runs) == (1 if vfr else 2)
    assert all(("-ss" in cmd) != vfr for cmd in counting_runs)
    reference = small_frames(source)
    for row, (start, end) in zip(out, ranges, strict=True):
        assert row["kept"], row["reject_detail"]
        assert assert_frames_match(reference, row["clip_path"], start) == end - start
        audio = [s for s in ffprobe_json(row["clip_path"])["streams"] if s["codec_type"] == "audio"]
        assert float(audio[0]["duration"]) == pytest.approx(row["duration_s"], abs=0.05)


def test_jobs_fill_the_threads_by_splitting_the_longest_at_a_clip_boundary():
    def clip(source, start, frames, path="/v.mp4", vfr=False):
        return {"source_id": source, "path": path, "vfr": vfr, "start_frame": start,
                "end_frame": start + frames, "start_s": start / 25, "end_s": (start + frames) / 25,
                "display_width": 640, "display_height": 360, "fps": 25.0}  # fmt: skip

    long = [clip("a", 100 * i, 100) for i in range(6)]  # one seek group of six clips
    short = [clip("b", 0, 50, path="/w.mp4")]
    jobs = cutter("unused", threads=4).jobs([long, short])
    # 600 frames -> 300 + 300 -> 300 + 200 + 100: on four threads all is done after 200.
    assert [sum(c["end_frame"] - c["start_frame"] for c in j) for j in jobs] == [
        200, 200, 100, 100, 50
    ]  # fmt: skip
    assert sorted(c["start_frame"] for j in jobs for c in j if c["source_id"] == "a") == [
        c["start_frame"] for c in long
    ]
    assert all(j == sorted(j, key=lambda c: c["start_frame"]) for j in jobs)
    # A split that saves less than the extra seek costs (a second of frames) is not made.
    tail = [clip("e", 0, 100), clip("e", 100, 10)]
    assert cutter("unused", threads=2).jobs([tail, short]) == [tail, short]
    # Never split: an object-store source (fetched once), a VFR one (never seeked), one thread.
    remote = [clip("c", 100 * i, 100, path="s3://bucket/v.mp4") for i in range(4)]
    vfr = [clip("d", 100 * i, 100, vfr=True) for i in range(4)]
    assert cutter("unused", threads=8).jobs([remote, vfr]) == [remote, vfr]
    assert cutter("unused", threads=1).jobs([long]) == [long]
    # Enough jobs, but one would keep the other thread waiting: it is split too.
    small = [[clip(s, 0, 20, path=f"/{s}.mp4")] for s in "xyz"]
    jobs = cutter("unused", threads=2).jobs([long, *small])
    assert [len(j) for j in jobs] == [3, 3, 1, 1, 1]


def test_seek_groups_are_capped():
    clips = [{"vfr": False, "start_s": 100.0 * i, "end_s": 100.0 * i + 5} for i in range(20)]
    stage = cutter("unused", max_seeks=3)
    groups = stage.seek_groups(clips)
    assert len(groups) == 3 and [c for g in groups for c in g] == clips


def test_clips_are_byte_identical_however_they_are_grouped_and_on_any_machine(videos, tmp_path):
    """The same clip, cut alone, with neighbours (one seek) or far apart (its own seek),
    gives the same bytes, every time. An anamorphic open-GOP source included."""
    import hashlib

    anamorphic = tmp_path / "anamorphic_open_gop.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(videos / "psd_testvideo.mp4"), "-t", "12",
         "-vf", "scale=704:576,setsar=16/11", "-c:v", "libx264", "-preset", "veryfast",
         "-x264-params", "open-gop=1:keyint=60:min-keyint=60", "-c:a", "aac", "-y",
         "file:" + str(anamorphic)], check=True,
    )  # fmt: skip
    cases = [(anamorphic, (200, 344), [(20, 90), (120, 180)]),
             (videos / "moviepy_chaplin.mp4", (100, 180), [(10, 60), (190, 230)]),
             (videos / "intel_asl_book.mkv", (40, 100), [(0, 30)])]  # fmt: skip
    for source, target, others in cases:
        digests = set()
        # Several seek groups in one ffmpeg, the case where x264's threads made bytes vary.
        variants = [([target], 10.0), ([*others, target], 10.0), *[([*others, target], 0.1)] * 3]
        for k, (ranges, gap) in enumerate(variants):
            out = cutter(tmp_path / f"{source.stem}-{k}", seek_gap_s=gap).process(
                clip_rows(source, sorted(ranges))
            )
            row = next(r for r in out.to_pylist() if r["start_frame"] == target[0])
            assert row["kept"], row["reject_detail"]
            digests.add((k, hashlib.sha256(Path(row["clip_path"]).read_bytes()).hexdigest()))
        assert len({d for _, d in digests}) == 1, (source.name, sorted(digests))
