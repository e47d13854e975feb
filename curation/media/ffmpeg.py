"""ffmpeg/ffprobe access: binaries, probing, and reading decoded frames through a pipe.

Command lines are built by ffmpeg-python and run as argument lists (never through a shell).
Local paths are passed with the `file:` protocol prefix so that names starting with `-` or
containing `:` are never taken for options or other protocols.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import ffmpeg
import numpy as np

from curation.core import faults


class MediaToolMissing(RuntimeError):
    pass


class ProbeError(RuntimeError):
    pass


def binary(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise MediaToolMissing(
            f"{name} not found on PATH: run `make setup` (installs ffmpeg) or install ffmpeg"
        )
    return found


def tool_version(name: str) -> str:
    """First line of `<tool> -version`, e.g. 'ffmpeg version 5.1.6 ...'."""
    out = subprocess.run([binary(name), "-version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


def media_input(path: str) -> str:
    """The input argument for ffmpeg/ffprobe: local paths get the `file:` protocol."""
    if "://" in path:
        return path
    return "file:" + path


def stderr_summary(stderr: bytes | str | None, limit: int = 300) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else (stderr or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return "no message"
    summary = " | ".join(lines[-3:])
    return summary[:limit]


def run_ffprobe(path: str, timeout_s: float) -> dict[str, Any]:
    try:
        return ffmpeg.probe(media_input(path), cmd=binary("ffprobe"), timeout=timeout_s, v="error")
    except ffmpeg.Error as exc:
        faults.check(exc.stderr, path)  # the disk or mount failed, not the file
        raise ProbeError(stderr_summary(exc.stderr)) from None
    except subprocess.TimeoutExpired:
        raise ProbeError(f"ffprobe timed out after {timeout_s:.0f} s") from None
    except ValueError as exc:  # ffprobe printed something that is not JSON
        raise ProbeError(f"ffprobe output unreadable: {exc}") from None


def _ratio(text: str | None) -> Fraction | None:
    if not text or text in ("N/A", "0/0", "0:1"):
        return None
    try:
        value = Fraction(text.replace(":", "/"))
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out else None  # NaN -> None


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            return int(round(float(side["rotation"]))) % 360
    rotate = (stream.get("tags") or {}).get("rotate")
    return int(rotate) % 360 if rotate not in (None, "") else 0


@dataclass(frozen=True)
class VideoInfo:
    container: str | None
    video_codec: str | None
    audio_codec: str | None
    has_audio: bool
    coded_width: int
    coded_height: int
    sample_aspect_ratio: float
    rotation: int
    display_width: int
    display_height: int
    fps: float | None
    vfr: bool
    duration_s: float | None
    frame_count: int | None
    video_start_s: float | None
    audio_start_s: float | None


def parse_probe(info: dict[str, Any]) -> VideoInfo | None:
    """Displayed geometry and timing of the first real video stream; None if there is none."""
    streams = info.get("streams", []) or []
    videos = [
        s
        for s in streams
        if s.get("codec_type") == "video"
        and not (s.get("disposition") or {}).get("attached_pic")  # cover art is not video
        and s.get("width")
    ]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if not videos:
        return None
    v = videos[0]
    a = audios[0] if audios else None
    width, height = int(v["width"]), int(v["height"])
    sar = _ratio(v.get("sample_aspect_ratio")) or Fraction(1)
    rotation = _rotation(v)
    # Anamorphic video is stretched horizontally on display (as `scale=iw*sar:ih` does).
    disp_w, disp_h = max(1, round(width * sar)), height
    if rotation in (90, 270):
        disp_w, disp_h = disp_h, disp_w
    avg, real = _ratio(v.get("avg_frame_rate")), _ratio(v.get("r_frame_rate"))
    fps = avg or real
    vfr = bool(avg and real and abs(float(avg) - float(real)) > 0.005 * float(real))
    fmt = info.get("format", {}) or {}
    duration = _float(fmt.get("duration")) or _float(v.get("duration"))
    nb_frames = v.get("nb_frames")
    return VideoInfo(
        container=fmt.get("format_name"),
        video_codec=v.get("codec_name"),
        audio_codec=a.get("codec_name") if a else None,
        has_audio=a is not None,
        coded_width=width,
        coded_height=height,
        sample_aspect_ratio=float(sar),
        rotation=rotation,
        display_width=disp_w,
        display_height=disp_h,
        fps=float(fps) if fps else None,
        vfr=vfr,
        duration_s=duration,
        frame_count=int(nb_frames) if str(nb_frames or "").isdigit() else None,
        video_start_s=_float(v.get("start_time")),
        audio_start_s=_float(a.get("start_time")) if a else None,
    )


@dataclass
class FrameStream:
    """Decoded frames of a video, scaled to width x height, as BGR uint8 arrays.

    Iterate it once; afterwards `frames`, `returncode` and `error` tell how decoding ended.
    ffmpeg decodes in its own process, so decoding overlaps with the caller's work on frames.
    """

    path: str
    width: int
    height: int
    scale_flags: str = "neighbor"
    timeout_s: float = 3600.0
    start_s: float | None = None  # decode only [start_s, end_s) when given (input seeking)
    end_s: float | None = None
    # Also decode the first sound stream (to nothing), so its decode errors are logged too.
    check_audio: bool = False
    frames: int = 0
    returncode: int | None = None
    error: str | None = None  # why decoding ended early (ffmpeg failed or timed out)
    messages: int = 0  # lines ffmpeg logged at error level (decode errors in a stream it read)
    last_message: str | None = None
    _stderr: list[bytes] = field(default_factory=list)

    def _command(self) -> list[str]:
        seek = {}
        if self.start_s is not None:
            seek["ss"] = f"{self.start_s:.6f}"
        if self.end_s is not None:
            seek["t"] = f"{self.end_s - (self.start_s or 0.0):.6f}"
        source = ffmpeg.input(media_input(self.path), **seek)
        stream = source.video.filter("scale", self.width, self.height, flags=self.scale_flags)
        outputs = [
            ffmpeg.output(
                stream, "pipe:", format="rawvideo", pix_fmt="bgr24", fps_mode="passthrough"
            )
        ]
        if self.check_audio:  # the null muxer writes nothing, so "-" is never opened
            outputs.append(ffmpeg.output(source["a:0"], "-", format="null"))
        return (
            ffmpeg.merge_outputs(*outputs)
            .global_args("-nostdin", "-hide_banner", "-v", "error")
            .compile(cmd=binary("ffmpeg"))
        )

    def __iter__(self) -> Iterator[np.ndarray]:
        size = self.width * self.height * 3
        proc = subprocess.Popen(
            self._command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            bufsize=size * 4,
        )
        assert proc.stdout is not None and proc.stderr is not None
        # Drain stderr in a thread so a chatty decoder can never block on a full pipe.
        drain = threading.Thread(
            target=lambda: self._stderr.append(proc.stderr.read()), daemon=True
        )
        drain.start()
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(self.timeout_s, kill)
        timer.start()
        try:
            while True:
                buf = proc.stdout.read(size)
                if len(buf) < size:
                    break
                self.frames += 1
                yield np.frombuffer(buf, np.uint8).reshape(self.height, self.width, 3)
        finally:
            timer.cancel()
            proc.stdout.close()
            self.returncode = proc.wait()
            drain.join()
            lines = [ln for ln in b"".join(self._stderr).decode("utf-8", "replace").splitlines()
                     if ln.strip()]  # fmt: skip
            self.messages = len(lines)
            self.last_message = lines[-1].strip()[:300] if lines else None
            if timed_out.is_set():
                self.error = f"decoding timed out after {self.timeout_s:.0f} s"
            elif self.returncode != 0:
                self.error = stderr_summary(b"".join(self._stderr))
        # Read to the end (not left early): an error of the machine, not of the stream, fails
        # the caller's shard instead of becoming its verdict on the video.
        faults.check(b"".join(self._stderr), self.path)
