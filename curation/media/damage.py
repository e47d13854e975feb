"""Where a video is damaged: the frames its decoder concealed or lost, and every frame predicted
from them, as spans of time; and where its sound could not be decoded.

A decoder hides bit errors: it "conceals" the broken macroblocks from neighbouring frames and
still returns a frame, and the frames predicted from that one carry the smear until the next
keyframe. Counting lost frames misses all of that (a source with one byte in 500 flipped
decodes 99% of its frames, a third of them smeared). So the scene pass, when ffmpeg logged any
error, asks this module: the streams are decoded once more, packet by packet in decode order
(PyAV, one thread, so each error belongs to the packet that caused it), and

- a video packet is *bad* when decoding it fails or the frame it gives is flagged corrupt
  (the decoder's own `decode_error_flags`: concealment was active);
- from a bad packet on, every packet up to the next clean keyframe in decode order is damaged
  (they are predicted from it), and so are the leading pictures after that keyframe that are
  shown before it (an open GOP's B-frames may still point back);
- a span is the display time of its damaged packets, first to last plus one frame;
- frames missing between those decoded (a neighbour more than 1.5 times a frame's own
  duration later: packets the demuxer or decoder dropped), and before the first one decoded
  (times count from the video stream's start, as the probe and the cut do), are damaged too.

Audio packets that fail to decode are spans of their own: sound damage is reported apart, as
a clip whose pictures are clean may still be used without its sound.

It runs in a child process (`python -m curation.media.damage PATH`): a decoder fed damaged
data is the likeliest thing to crash, and a child can be timed out. A fault of the machine
(an I/O error, a lost file) is not a verdict: the caller's `faults.check` sees the child's
error text.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import itertools
import json
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from curation.core import faults
from curation.media.ffmpeg import media_input


class DamageUnknown(RuntimeError):
    """The damage could not be located (the child failed or timed out)."""


@dataclass
class Damage:
    """Damaged spans of one file, in seconds from its first video frame."""

    frame_times: list[float] = field(default_factory=list)  # each decoded frame, output order
    video: list[tuple[float, float]] = field(default_factory=list)
    audio: list[tuple[float, float]] = field(default_factory=list)
    bad_video_packets: int = 0  # failed to decode or decoded with concealment
    bad_audio_packets: int = 0
    lost_frames: int = 0  # frames missing between decoded ones
    ended_early: str | None = None  # why reading stopped before the end of the file

    def note(self) -> str:
        """One line for a row's decode note."""
        parts = []
        if self.video:
            parts.append(f"video damaged in {fmt_spans(self.video)} "
                         f"({self.bad_video_packets} bad packet(s), "
                         f"{self.lost_frames} frame(s) lost)")  # fmt: skip
        if self.audio:
            parts.append(f"sound damaged in {fmt_spans(self.audio)} "
                         f"({self.bad_audio_packets} bad packet(s))")  # fmt: skip
        if self.ended_early:
            parts.append(f"reading ended early: {self.ended_early}")
        return "; ".join(parts) or "no damage located"


def fmt_spans(spans: list[tuple[float, float]], limit: int = 4) -> str:
    shown = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in spans[:limit])
    return shown + (f" and {len(spans) - limit} more" if len(spans) > limit else "")


def merge(spans: list[tuple[float, float]], gap: float = 0.0) -> list[tuple[float, float]]:
    """Spans sorted, with those that overlap or lie within `gap` of each other joined."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + gap:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def overlap(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of `spans` inside [start, end)."""
    return sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans)


def pieces(start: int, end: int, bad: list[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """[start, end) cut at the frame ranges in `bad` (sorted, disjoint): (from, to, damaged)."""
    out, at = [], start
    for a, b in bad:
        a, b = max(a, start), min(b, end)
        if a >= b:
            continue
        if a > at:
            out.append((at, a, False))
        out.append((a, b, True))
        at = b
    if at < end:
        out.append((at, end, False))
    return out


def video_spans(
    packets: list[tuple[float, bool, bool]], frame_s: float
) -> list[tuple[float, float]]:
    """Damaged display spans from the video packets in decode order as (pts, keyframe, bad)."""
    spans = []
    i, n = 0, len(packets)
    while i < n:
        if not packets[i][2]:
            i += 1
            continue
        j = i + 1  # damage runs on to the next clean keyframe
        while j < n and not (packets[j][1] and not packets[j][2]):
            j += 1
        times = [p[0] for p in packets[i:j]]
        if j < n:  # leading pictures of the next GOP, shown before its keyframe
            key = packets[j][0]
            k = j + 1
            while k < n and packets[k][0] < key and not packets[k][1]:
                times.append(packets[k][0])
                k += 1
        spans.append((min(times), max(times) + frame_s))
        i = j
    return merge(spans)


def scan(path: str, audio: bool = True) -> dict[str, Any]:
    """Decode `path` packet by packet (in this process) and return what `Damage` holds."""
    import av  # only here: the child imports it, the caller never does

    container = av.open(media_input(path))
    video = container.streams.video[0]
    video.thread_count = 1  # one thread: an error surfaces with the packet that caused it
    sound = container.streams.audio[0] if audio and container.streams.audio else None
    streams = [video] + ([sound] if sound is not None else [])
    v_base = float(video.time_base)
    frame_s = 1.0 / float(video.average_rate or video.guessed_rate or 25)
    # A variable-rate stream: a frame lasts until the next packet's time. Older FFmpeg builds
    # report each frame's coded duration (one nominal frame) instead, which would make every
    # long frame look like lost ones.
    variable = bool(video.average_rate and video.guessed_rate) and abs(
        float(video.average_rate) - float(video.guessed_rate)
    ) > 0.01 * float(video.guessed_rate)
    # Times count from the stream's start, as the probe's video_start_s and the cut do: a
    # first GOP lost is damage at 0 s, not a shift of everything after it.
    origin = video.start_time * v_base if video.start_time is not None else None
    packets: list[list[Any]] = []  # [pts, key, bad] per video packet, decode order
    by_pts: dict[int, int] = {}
    times: list[float] = []
    lengths: dict[float, float] = {}  # a frame's own duration, by its time
    audio_spans: list[tuple[float, float]] = []
    bad_audio = 0
    ended = None

    def take(frames: list[Any]) -> None:
        for frame in frames:
            t = (frame.pts if frame.pts is not None else 0) * v_base
            times.append(t)
            lengths[t] = (getattr(frame, "duration", 0) or 0) * v_base or frame_s
            if frame.is_corrupt and frame.pts in by_pts:
                packets[by_pts[frame.pts]][2] = True

    try:
        for packet in container.demux(*streams):
            if packet.stream is video:
                if packet.pts is None and packet.size == 0:  # the flush packet
                    continue
                pts = packet.pts if packet.pts is not None else packet.dts
                by_pts[pts] = len(packets)
                packets.append([(pts or 0) * v_base, bool(packet.is_keyframe), False])
                # A decoder's error is about the data, never the machine (AAC's catch-all
                # error reads "Operation not permitted"): the packet is bad.
                try:
                    take(video.codec_context.decode(packet))
                except av.error.FFmpegError:
                    packets[-1][2] = True
            elif sound is not None and packet.pts is not None:
                try:
                    sound.codec_context.decode(packet)
                except av.error.FFmpegError:
                    start = packet.pts * float(packet.time_base)
                    length = (packet.duration or 0) * float(packet.time_base) or 0.05
                    audio_spans.append((start, start + length))
                    bad_audio += 1
    except av.error.FFmpegError as error:  # reading the file broke off: the disk, or the file
        if isinstance(error, OSError) and faults.fault_of(error) is not None:
            raise
        ended = str(error)[:200]
    with contextlib.suppress(av.error.FFmpegError):  # flushing a decoder left broken
        take(video.codec_context.decode(None))
    container.close()
    shown = sorted(times)
    if variable:
        starts = sorted({p[0] for p in packets})
        for t in shown:
            later = bisect.bisect_right(starts, t + 1e-9)
            if later < len(starts):
                lengths[t] = max(lengths[t], starts[later] - t)
    base = origin if origin is not None else (shown[0] if shown else 0.0)
    spans = video_spans([(p[0] - base, p[1], p[2]) for p in packets], frame_s)
    gaps = [(a - base + lengths[a], b - base) for a, b in itertools.pairwise(shown)
            if b - a > 1.5 * lengths[a]]  # fmt: skip
    if shown and shown[0] - base > 1.5 * frame_s:  # the first frames never came out
        gaps.insert(0, (0.0, shown[0] - base))
    spans = merge([*spans, *gaps])
    if ended and packets:  # whatever the file still held past the break is lost
        last = max(p[0] for p in packets) - base
        spans = merge([*spans, (last, float("inf"))])
    return {
        "frame_times": [round(t - base, 6) for t in times],
        "video": [(max(0.0, a), b) for a, b in spans],
        "audio": [(a - base, b - base) for a, b in merge(audio_spans, gap=0.1)],
        "bad_video_packets": sum(1 for p in packets if p[2]),
        "bad_audio_packets": bad_audio,
        "lost_frames": sum(max(1, round((b - a) / frame_s)) for a, b in gaps),
        "ended_early": ended,
    }


def locate(path: str, *, audio: bool = True, timeout_s: float = 3600.0) -> Damage:
    """The damage of a local file, located by a child process. Raises a MachineFault when the
    machine failed the read, DamageUnknown when the child could not tell."""
    command = [sys.executable, "-m", "curation.media.damage", path]
    if not audio:
        command.append("--no-audio")
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=timeout_s, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as error:
        raise DamageUnknown(f"locating the damage timed out after {timeout_s:.0f} s") from error
    faults.check(done.stderr, path)
    if done.returncode == -signal.SIGKILL:  # the kernel's out-of-memory killer, most likely
        raise faults.MachineFault.of_errno(
            errno.ENOMEM, f"locating the damage in {path}: the child was killed", path=path
        )
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise DamageUnknown(f"locating the damage failed (exit {done.returncode}): {tail[0]}")
    data = json.loads(done.stdout)
    data["video"] = [tuple(s) for s in data["video"]]
    data["audio"] = [tuple(s) for s in data["audio"]]
    return Damage(**data)


def main(argv: list[str]) -> int:
    path = argv[0]
    try:
        result = scan(path, audio="--no-audio" not in argv)
    except OSError as error:  # the machine's error text, for the caller's faults.check
        print(f"{path}: {error}", file=sys.stderr)
        return 3
    json.dump(result, sys.stdout)  # inf is written as Infinity, which json reads back
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
