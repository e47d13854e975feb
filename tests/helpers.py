"""Helpers for tests: synthetic videos made with real ffmpeg, ffprobe, CLI runs."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO / "tests" / "assets" / "videos"


def make_video(
    path: Path,
    *,
    size: str = "640x480",
    seconds: float = 2.0,
    fps: int = 25,
    audio: bool = False,
    extra_output_args: tuple[str, ...] = (),
    pattern: str = "testsrc2",
) -> Path:
    """Encode a synthetic video with ffmpeg's lavfi sources (moving test pattern, sine tone)."""
    args = [
        "ffmpeg", "-v", "error", "-y", "-nostdin",
        "-f", "lavfi", "-i", f"{pattern}=size={size}:rate={fps}:duration={seconds}",
    ]  # fmt: skip
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=16000:duration={seconds}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    args += [*extra_output_args, "file:" + str(path)]
    subprocess.run(args, check=True)
    return path


def ffprobe_json(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         "-count_frames", "file:" + str(path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def run_cli(
    *args: str, cwd: Path = REPO, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m curation ...` in a subprocess, as a user would (`env`: more variables)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "curation", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"curation {args} failed ({result.returncode}):\n{result.stderr[-3000:]}"
        )
    return result


def probed(path: Path) -> dict:
    """The probe stage's row for one file (what later stages receive)."""
    from curation.core.ids import source_id
    from stages.probe import ProbeConfig, ProbeStage

    return ProbeStage(cfg=ProbeConfig()).probe_one(
        {"source_id": source_id(str(path)), "path": str(path)}
    )


def whole_file_clip(path: Path, clip_id: str | None = None) -> dict:
    """A virtual clip covering a whole file: a row of the clips folder, as the cut writes it."""
    from curation.core.schemas import CLIPS

    source = probed(path)
    row = {name: source.get(name) for name in CLIPS.names}
    return {
        **row,
        "clip_id": clip_id or source["source_id"] + "-0",
        "start_s": 0.0,
        "end_s": source["duration_s"],
        "duration_s": source["duration_s"],
        "cut_mode": "virtual",
        "clip_path": None,
        "kept": True,
    }


def clip_rows(path: Path, ranges: list[tuple[int, int]]):
    """Temporal-stage rows of [start, end) frame ranges of a file: the cut stage's input."""
    import pyarrow as pa

    from curation.core.ids import clip_id
    from curation.core.schemas import TEMPORAL

    src = probed(path)
    rows = []
    for s, e in ranges:
        rows.append(
            {
                **{k: src.get(k) for k in TEMPORAL.names},
                "clip_id": clip_id(src["source_id"], s, e),
                "start_frame": s,
                "end_frame": e,
                "start_s": s / src["fps"],
                "end_s": e / src["fps"],
                "duration_s": (e - s) / src["fps"],
                "keyframes": 2,
                "keyframe_rate": 1.0,
                "temporal_verdict": "ok",
                "kept": True,
            }
        )
    return pa.Table.from_pylist(rows, schema=TEMPORAL)


def offline_config(tiny_models: dict[str, Path], *overrides: str):
    """The offline profile with its tiny-model paths pointed at this session's tiny models."""
    from curation.engine.config import load_config

    root = tiny_models["qwen2-vl"].parent
    profile = root / "offline-profile.yaml"
    text = (REPO / "configs" / "curate" / "offline.yaml").read_text()
    profile.write_text(text.replace("models/tiny", str(root)))
    return load_config(profile, ["runner.progress=false", *overrides])


def still_clip(still: Path, path: Path, seconds: float = 3.0) -> Path:
    """A photo held still for `seconds` at 25 fps (even dimensions for H.264)."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-loop", "1", "-i", str(still),
                    "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2,fps=25", "-frames:v",
                    str(round(seconds * 25)), "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
                   check=True)  # fmt: skip
    return path


def zoom_clip(path: Path, zoom_in: bool = True) -> Path:
    """The Obama photo zoomed in 1x -> 2x on the face between 1 s and 3 s of a 5-s clip (a
    face coming up to the camera), or out 2x -> 1x (going back): labelled in events.json."""
    still = REPO / "tests" / "assets" / "stills" / "face_recognition_obama.jpg"
    grow = "min(2,1+max(0,on-25)/50)"
    z = grow if zoom_in else f"3-{grow}"
    vf = (
        f"crop=910:1136:0:0,zoompan=z='{z}':x='iw/2-(iw/zoom/2)':y='ih*0.24-(ih/zoom*0.24)'"
        ":d=1:s=456x568:fps=25"
    )
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-loop", "1", "-i", str(still), "-vf", vf,
                    "-frames:v", "125", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
                   check=True)  # fmt: skip
    return path


@contextlib.contextmanager
def full_disk(folder: Path):
    """A tmpfs mounted over `folder`, filled to the last byte, then taken away: a real full
    disk for one folder of a run (needs root: skips the test otherwise)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): needs root")
    try:
        with contextlib.suppress(OSError), open(folder / "filler", "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def free_port() -> int:
    """A TCP port nothing listens on at the moment, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
