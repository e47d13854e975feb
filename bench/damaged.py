"""Damaged copies of real video files, the ways files get damaged on their way to a dataset.

- `flip`: bits flipped at a rate inside the packets of one stream (video or sound) over a
  stretch of the file's time, found with ffprobe (`-show_packets` gives each packet's byte
  position): a bad disk sector, a flaky transfer. The container stays readable.
- `truncate`: the file cut short, as an interrupted download leaves it.
- `drop_chunk`: a run of bytes missing from the middle, as a broken copy or a lost
  object-store part leaves it.

With `excerpt` (the start of a real file, its own packets) to damage, and `psnr` to compare
a damaged decode with the original's.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import numpy as np


def _streams(path: Path) -> dict[int, str]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=index,codec_type", "-of", "json",
         "file:" + str(path)],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return {s["index"]: s["codec_type"] for s in json.loads(out)["streams"]}


def packets(path: Path) -> list[dict]:
    """ffprobe's packets of `path`: stream_index, pts_time, pos, size."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "packet=stream_index,pts_time,pos,size",
         "-of", "json", "file:" + str(path)],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)["packets"]


def flip(
    src: Path,
    dest: Path,
    rate: float,
    kind: str = "video",
    span: tuple[float, float] = (1 / 3, 2 / 3),
    seed: int = 0,
) -> int:
    """Copy `src` to `dest` with each byte of the `kind` packets whose time lies in `span`
    (shares of the stream's length) given one flipped bit with probability `rate`.
    Returns how many bits were flipped."""
    data = bytearray(src.read_bytes())
    kinds = _streams(src)
    chosen = [p for p in packets(src) if kinds.get(p["stream_index"]) == kind
              and p.get("pos") not in (None, "N/A") and p.get("pts_time") not in (None, "N/A")]  # fmt: skip
    if not chosen:
        raise ValueError(f"{src} has no {kind} packets with positions")
    end = max(float(p["pts_time"]) for p in chosen)
    rng = random.Random(seed)
    flipped = 0
    for p in chosen:
        if span[0] * end <= float(p["pts_time"]) < span[1] * end:
            pos, size = int(p["pos"]), int(p["size"])
            for i in range(pos, pos + size):
                if rng.random() < rate:
                    data[i] ^= 1 << rng.randrange(8)
                    flipped += 1
    dest.write_bytes(bytes(data))
    return flipped


def truncate(src: Path, dest: Path, keep: float) -> None:
    """The first `keep` share of `src`'s bytes."""
    data = src.read_bytes()
    dest.write_bytes(data[: int(len(data) * keep)])


def drop_chunk(src: Path, dest: Path, at: float, share: float) -> None:
    """`src` without `share` of its bytes, starting `at` (a share of its length) in."""
    data = src.read_bytes()
    a = int(len(data) * at)
    dest.write_bytes(data[:a] + data[a + int(len(data) * share) :])


def excerpt(src: Path, dest: Path, seconds: float) -> Path:
    """The first `seconds` of `src`, stream-copied: its own packets and keyframes."""
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", f"file:{src}", "-t",
                    str(seconds), "-c", "copy", f"file:{dest}"], check=True)  # fmt: skip
    return dest


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 frames in dB (99: identical)."""
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)
