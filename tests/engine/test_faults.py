"""A fault of the machine is never a verdict on a clip: real faults injected into real runs.

Each fault fails the shard it hits (nothing is written for it) and stops the run with one line;
once the machine is back, running the same command again ends with exactly the manifests of a
run that was never interrupted, and no reject reason anywhere names an environment error.
Faults: a disk that fills up (a tmpfs mounted full over each stage's folder in turn, and a run
root that fills up during the cut, through the CLI), a source folder that vanishes and comes
back, the object store going away (a proxy in front of the S3-compatible server taken down)
and a model server that says it is unavailable. The fault table is printed at the end.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from chat_server import ChatServer
from helpers import REPO, full_disk, offline_config
from tcp_proxy import TcpProxy

from curation.core import faults
from curation.core.faults import MachineFault
from curation.engine.pipeline import Pipeline
from curation.engine.runners.local import LocalRunner
from curation.rundir import RunDir
from curation.storage import Storage
from stages import registry

TALKER = "derived_talking_obama_910x1136.mp4"  # one clip that every stage works on
TABLE: list[tuple[str, str, bool]] = []  # (fault, stage, resumed manifests identical)


# --- the rule, on errors as the tools raise them ------------------------------------------------
@pytest.mark.parametrize(
    ("error", "what"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/run/x"), "no space left on device"),
        (b"[out#0/mp4 @ 0x1] Error writing trailer: No space left on device", "no space left"),
        (b"file:/videos/a.mp4: No such file or directory", "a file that was there is gone"),
        (b"av_interleaved_write_frame(): Input/output error", "input/output error"),
        (
            OSError(
                "When reading information for key 'r/run.json' in bucket 'b': AWS Error "
                "NETWORK_CONNECTION during HeadObject operation: curlCode: 7, Couldn't "
                "connect to server"
            ),
            "connection refused",
        ),  # fmt: skip
        (MemoryError(), "out of memory"),
    ],
)
def test_errors_of_the_machine_are_faults(error, what):
    fault = faults.fault_in_text(error) if isinstance(error, bytes) else faults.fault_of(error)
    assert fault is not None and fault.what.startswith(what)
    assert "run the same command" in fault.line() or "resume" in fault.line()


@pytest.mark.parametrize(
    "message",
    [
        b"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5] moov atom not found\nfile:/x.mp4: Invalid data found when processing input",
        b"[matroska,webm @ 0x5] File ended prematurely",
        b"[h264 @ 0x5] Reference 2 >= 2\n[h264 @ 0x5] error while decoding MB 13 30, bytestream -5",
        b"Output file #0 does not contain any stream",
    ],
)
def test_errors_of_a_broken_video_are_verdicts(message):
    assert faults.fault_in_text(message) is None
    faults.check(message)  # returns: the caller records its verdict


def test_a_missing_file_is_a_verdict_and_a_missing_folder_a_fault(tmp_path):
    gone = b"file:/x: No such file or directory"
    faults.check(gone, str(tmp_path / "gone.mp4"))  # its folder is there: the file is bad
    with pytest.raises(MachineFault, match=r"a file that was there is gone .* at .*lost/a.mp4"):
        faults.check(gone, str(tmp_path / "lost" / "a.mp4"))  # a lost mount, a moved folder


def test_a_fault_keeps_where_it_happened_through_pickling():
    fault = faults.fault_of(OSError(errno.ENOSPC, "No space left on device", "/r/clips/.x.tmp"))
    placed = pickle.loads(pickle.dumps(fault.at(stage="cut", shard="00003")))
    assert placed.line() == (
        "no space left on device at /r/clips/.x.tmp (stage cut, shard 00003): free space (or "
        "give the run root more), then run the same command to resume"
    )
    from ray.exceptions import RayTaskError

    wrapped = RayTaskError("scenes", "Traceback (most recent call last): ...", placed)
    assert faults.find_fault(wrapped).line() == placed.line()
    assert faults.find_fault(wrapped.as_instanceof_cause()).line() == placed.line()
    deliberate = RuntimeError("the embedder cannot be loaded")  # raised from an OSError on purpose
    deliberate.__cause__ = OSError(errno.ENOENT, "No such file or directory", "/models/x")
    assert faults.find_fault(deliberate) is None


# --- real faults in real runs ---------------------------------------------------------------
def manifests(run: RunDir, folders: list[str]) -> dict[str, list[dict]]:
    out = {}
    for folder in folders:
        rows = [{k: _comparable(v, run) for k, v in r.items()}
                for r in run.read_folder(folder).to_pylist()]  # fmt: skip
        out[folder] = sorted(rows, key=lambda r: r.get("clip_id") or r["source_id"])
    return out


def _comparable(value, run: RunDir):
    if isinstance(value, str):
        return value.replace(run.location, "<run>")
    if isinstance(value, list):
        return [_comparable(v, run) for v in value]
    if isinstance(value, dict):
        return {k: _comparable(v, run) for k, v in value.items()}
    return value


def no_environment_verdict(found: dict[str, list[dict]]) -> bool:
    return all(
        faults.fault_in_text(r.get("reject_detail") or "") is None
        for rows in found.values()
        for r in rows
    )


def folders_until(last: str) -> list[str]:
    order = registry.default_order()
    return [registry.folders()[n] for n in order[: order.index(last) + 1]]


def record(fault: str, stage: str, same: bool) -> bool:
    TABLE.append((fault, stage, same))
    return same


@pytest.fixture(scope="module")
def talker(videos, tmp_path_factory) -> Path:
    """The talking head's first 3 s: one clip that every stage works on, speech and a face."""
    folder = tmp_path_factory.mktemp("faults_sources") / "videos"
    folder.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(videos / TALKER), "-t", "3",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    str(folder / TALKER)], check=True)  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def config(tiny_models):
    return offline_config(tiny_models)


@pytest.fixture(scope="module")
def reference(config, talker, tmp_path_factory) -> dict[str, list[dict]]:
    run = RunDir(tmp_path_factory.mktemp("faults_reference"), "r")
    Pipeline(config, run, runner=LocalRunner(progress=False)).execute(talker)
    out = manifests(run, folders_until("structure"))
    assert [r["kept"] for r in out["structured"]] == [True]  # one clip through every stage
    assert out["signals"][0]["transcript"] and out["boxes"][0]["frames_with_face"]
    return out


def test_a_disk_that_fills_up_at_each_stage_in_turn(config, talker, reference, tmp_path):
    run = RunDir(tmp_path, "r")
    pipeline = Pipeline(config, run, runner=LocalRunner(progress=False))
    for name in registry.default_order():
        with full_disk(run.path / registry.folders()[name]):
            with pytest.raises(MachineFault) as caught:
                pipeline.execute(talker)
            assert not run.units(registry.folders()[name])  # the shard failed: nothing written
        fault = caught.value
        assert fault.what == "no space left on device" and fault.context["stage"] == name
    Pipeline(config, run, runner=LocalRunner(progress=False)).execute(talker)  # the disk grew
    found = manifests(run, folders_until("structure"))
    assert no_environment_verdict(found)
    for name in registry.default_order():
        folder = registry.folders()[name]
        assert record("disk full", name, found[folder] == reference[folder]), name


def test_a_source_folder_that_vanishes_and_comes_back(config, talker, reference, tmp_path):
    sources = tmp_path / "videos"
    shutil.copytree(talker, sources)
    run = RunDir(tmp_path, "r")
    Pipeline(config, run, runner=LocalRunner(progress=False)).execute(sources, until="probe")
    sources.rename(tmp_path / "elsewhere")  # a lost mount
    with pytest.raises(MachineFault) as caught:  # resumed as `make curate RUN=r` does it
        Pipeline(config, run, runner=LocalRunner(progress=False)).execute(None, until="cut")
    assert caught.value.context["stage"] == "scenes" and "gone" in caught.value.what
    (tmp_path / "elsewhere").rename(sources)
    Pipeline(config, run, runner=LocalRunner(progress=False)).execute(None, until="cut")
    folders = folders_until("cut")
    found = manifests(run, folders)
    # The copy has another path: compare what does not name it.
    strip = {"path", "source_id", "clip_id", "clip_path"}
    same = all(
        [{k: v for k, v in r.items() if k not in strip} for r in found[f]]
        == [{k: v for k, v in r.items() if k not in strip} for r in reference[f]]
        for f in folders
    )
    assert no_environment_verdict(found)
    assert record("source folder gone", "scenes", same)


def test_the_object_store_going_away_mid_run(s3, config, talker, tmp_path, monkeypatch):
    import boto3

    boto3.client("s3").create_bucket(Bucket="curation-faults")
    proxy = TcpProxy(int(os.environ["AWS_ENDPOINT_URL"].rsplit(":", 1)[1]))
    proxy.up()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.port}")
    uninterrupted = RunDir("s3://curation-faults/runs", "ref")
    Pipeline(config, uninterrupted, runner=LocalRunner(progress=False)).execute(talker, until="cut")
    run = RunDir("s3://curation-faults/runs", "r")
    Pipeline(config, run, runner=LocalRunner(progress=False)).execute(talker, until="scenes")
    proxy.down()
    try:
        with pytest.raises(Exception) as caught:
            Pipeline(config, run, runner=LocalRunner(progress=False)).execute(talker, until="cut")
        fault = faults.find_fault(caught.value)
        assert fault is not None and "connection" in fault.what, caught.value
    finally:
        proxy.up()
    Pipeline(config, run, runner=LocalRunner(progress=False)).execute(talker, until="cut")
    folders = folders_until("cut")
    found, expected = manifests(run, folders), manifests(uninterrupted, folders)
    assert no_environment_verdict(found)
    assert record("object store down", "after scenes", found == expected)
    assert Storage.open("s3://curation-faults/runs/r").exists("clips")


def test_a_model_server_that_is_unavailable_for_a_while(tiny_models, talker, tmp_path):
    with ChatServer(tiny_models["qwen2-vl"]) as server:
        config = offline_config(
            tiny_models, "brief_caption.backend.kind=openai",
            f"brief_caption.backend.base_url={server.url}", "brief_caption.backend.model=tiny",
            "brief_caption.backend.retries=1", "brief_caption.backend.backoff_s=0.01",
            "stages=[probe, scenes, temporal, cut, brief_caption]",
        )  # fmt: skip
        uninterrupted = RunDir(tmp_path, "ref")
        Pipeline(config, uninterrupted, LocalRunner(progress=False)).execute(
            talker, "brief_caption"
        )
        run = RunDir(tmp_path, "r")
        server.mode = "unavailable"
        with pytest.raises(MachineFault) as caught:
            Pipeline(config, run, LocalRunner(progress=False)).execute(talker, "brief_caption")
        assert caught.value.context["stage"] == "brief_caption"
        assert "model server" in caught.value.what
        assert not run.units("captions")
        server.mode = "ok"
        Pipeline(config, run, LocalRunner(progress=False)).execute(talker, "brief_caption")
    folders = ["sources", "scenes", "temporal", "clips", "captions"]
    found = manifests(run, folders)
    assert no_environment_verdict(found)
    same = found == manifests(uninterrupted, folders)
    assert record("model server unavailable", "brief_caption", same)


def test_a_full_run_root_through_the_cli_ends_with_one_line_and_resumes(videos, tmp_path):
    """The user's view: `make curate` on a run root that fills up during the cut."""
    sources = tmp_path / "videos"
    sources.mkdir()
    for name in ("intel_asl_book.mkv", TALKER):  # a signer and a talking head: 2 clips
        shutil.copy(videos / name, sources / name)

    def curate(root: Path, *extra: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "curation", "curate", "--config",
               str(REPO / "configs/curate/offline.yaml"), "--sources", str(sources), "--run",
               "diskfull", "--set", f"run.root={root}", "--set", "runner.progress=false",
               "--until", "cut", *extra]  # fmt: skip
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)

    assert curate(tmp_path / "ref").returncode == 0
    ref = RunDir(tmp_path / "ref", "diskfull")
    used = sum(p.stat().st_size for p in ref.path.rglob("*") if p.is_file())
    root = tmp_path / "small"
    root.mkdir()
    size = used * 3 // 4  # the clips do not fit
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): needs root")
    try:
        failed = curate(root)
        assert failed.returncode == 2, failed.stderr
        last = failed.stderr.strip().splitlines()[-1]
        assert last.startswith("error: no space left on device"), failed.stderr
        assert last.endswith("then run the same command to resume") and "(stage " in last
        assert "Traceback" not in failed.stderr
        subprocess.run(["mount", "-o", f"remount,size={used * 4}", str(root)], check=True)
        resumed = curate(root)
        assert resumed.returncode == 0, resumed.stderr
        run = RunDir(root, "diskfull")
        folders = folders_until("cut")
        found, expected = manifests(run, folders), manifests(ref, folders)
        assert no_environment_verdict(found)
        state = json.loads((run.path / "run.json").read_text())
        assert state["stages"]["cut"]["kept"] == json.loads(
            (ref.path / "run.json").read_text())["stages"]["cut"]["kept"]  # fmt: skip
        assert record("run root full (CLI)", "cut", found == expected)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def test_zz_the_fault_table(capsys):
    """Printed with the test output; every row must say yes."""
    if not TABLE:
        pytest.skip("no fault test ran")
    with capsys.disabled():
        print("\nfault                        stage             resumed manifests identical")
        for fault, stage, same in TABLE:
            print(f"{fault:<28} {stage:<17} {'yes' if same else 'NO'}")
    assert all(same for _, _, same in TABLE)
