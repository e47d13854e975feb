"""Thumbnails for the report: the frames the detectors saw, made once and reused.

A clip with a boxes row gets its `frames_sampled` frames, decoded by the same helper and at
the same positions as the boxes stage (curation/media/frames.py), so its boxes (stored in
normalised coordinates) line up with the pictures. Other clips get `frames` frames at those
positions. One ffmpeg run per clip decodes them all; a file is named after the clip id and
the frame's time, `<run>/report/thumbs/<clip_id>-<ms>ms.jpg`, and a clip whose files all
exist is not decoded again.
"""

from __future__ import annotations

import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import cv2
from tqdm import tqdm

from curation.media.frames import clip_frames, uniform_indices

log = logging.getLogger(__name__)

MAX_SIDE = 256  # pixels: a strip of six fits a laptop screen


def _safe(clip_id: str) -> str:
    # Clip ids are hex digests; anything else still must not leave the thumbs folder.
    return re.sub(r"[^A-Za-z0-9_-]", "_", clip_id)[:64] or "clip"


def plan(clip: dict[str, Any], frames: int) -> list[tuple[int, float]]:
    """(sample index, time in the clip in seconds) of each thumbnail, known before decoding.

    Times come from the boxes column where a frame has boxes; otherwise from the uniform
    sampling rule over the clip's frame range, which is what the boxes stage used.
    """
    n = clip.get("frames_sampled") or frames
    fps = clip.get("fps") or 25.0
    total = max(1, int((clip.get("end_frame") or 0) - (clip.get("start_frame") or 0)))
    times = {i: idx / fps for i, idx in enumerate(uniform_indices(total, n))}
    for box in clip.get("boxes") or []:
        if box.get("frame") is not None and box.get("t_s") is not None:
            times[int(box["frame"])] = float(box["t_s"])
    return sorted(times.items())


def thumb_name(clip_id: str, t_s: float) -> str:
    return f"{_safe(clip_id)}-{round(t_s * 1000):08d}ms.jpg"


def _write_jpeg(path: Path, rgb: Any) -> None:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 82]
    )
    if not ok:
        raise RuntimeError(f"cannot encode {path.name}")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # readers never see half a file
    tmp.write_bytes(data.tobytes())
    os.replace(tmp, path)


def _make_one(clip: dict[str, Any], planned: list[tuple[int, float]], out: Path) -> str:
    pictures, _ = clip_frames(clip, len(planned), MAX_SIDE)
    for (_, t), rgb in zip(planned, pictures, strict=False):
        _write_jpeg(out / thumb_name(clip["clip_id"], t), rgb)
    return clip["clip_id"]


def make_thumbs(
    clips: list[dict[str, Any]],
    out: Path,
    frames: int = 6,
    progress: bool = True,
    have: set[str] | None = None,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
    """Thumbnails of each clip as [{"src": file name, "frame": i, "t": seconds}], and counts
    of thumbnails made and reused and of clips that could not be decoded. New files go to
    `out`; `have` names the thumbnails that exist already (default: those in `out`)."""
    out.mkdir(parents=True, exist_ok=True)
    if have is None:
        have = {p.name for p in out.glob("*.jpg")}
    plans = {c["clip_id"]: plan(c, frames) for c in clips}
    todo = [c for c in clips if not all(thumb_name(c["clip_id"], t) in have
                                        for _, t in plans[c["clip_id"]])]  # fmt: skip
    pending = {c["clip_id"] for c in todo}
    reused = sum(len(p) for clip_id, p in plans.items() if clip_id not in pending)
    stats = {"made": 0, "reused": reused, "failed_clips": 0}
    failed: set[str] = set()
    # ffmpeg does the decoding in its own process: threads are enough to keep cores busy.
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        futures = {pool.submit(_make_one, c, plans[c["clip_id"]], out): c["clip_id"] for c in todo}
        for future in tqdm(as_completed(futures), total=len(futures), desc="thumbnails",
                           unit="clip", disable=not progress or not futures):  # fmt: skip
            clip_id = futures[future]
            try:
                future.result()
                stats["made"] += len(plans[clip_id])
            except (RuntimeError, OSError, ValueError, cv2.error) as exc:
                log.warning("no thumbnails for clip %s: %s", clip_id, exc)
                failed.add(clip_id)
    stats["failed_clips"] = len(failed)
    result = {}
    for clip_id, planned in plans.items():
        result[clip_id] = [
            {"src": thumb_name(clip_id, t), "frame": i, "t": round(t, 3)}
            for i, t in planned
            if thumb_name(clip_id, t) in have or (out / thumb_name(clip_id, t)).is_file()
        ]
    return result, stats
