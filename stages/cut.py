"""cut: materialise the kept clips, frame-accurate, audio kept, one ffmpeg process per source.

One ffmpeg run decodes a source once and feeds every clip's encoder through `split` + `trim`
(frame numbers, the same count the scenes stage used), so the cost is one decode per source,
not one per clip as with PySceneDetect's `split-video`. Clips are written under a temporary
name and renamed once ffmpeg succeeded. In `virtual` mode nothing is written: later stages
decode `path` between `start_s` and `end_s` themselves.
"""

from __future__ import annotations

import os
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import ffmpeg
import pyarrow as pa

from curation import schemas
from curation.media.ffmpeg import binary, media_input, stderr_summary
from stages.base import Stage, kept, rejected


@dataclass(kw_only=True)
class CutStage(Stage):
    name: ClassVar[str] = "cut"
    output_folder: ClassVar[str] = "clips"
    schema: ClassVar[pa.Schema] = schemas.CLIPS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "source_id", "path", "start_frame", "end_frame")

    clips_dir: str
    mode: str = "files"
    video_codec: str = "libx264"
    preset: str = "veryfast"
    crf: int = 22
    audio_codec: str = "aac"
    audio_bitrate: str = "128k"
    container: str = "mp4"
    encoder_threads: int = 0
    timeout_s: float = 3600.0
    batch_size: int = 1_000_000  # a shard's clips at once, so each source is decoded once

    def process(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        if self.mode == "virtual":
            return self.table(
                [
                    {**r, "cut_mode": "virtual", "clip_path": None, "clip_bytes": None, **kept()}
                    for r in rows
                ]
            )
        by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_source[r["source_id"]].append(r)
        out = []
        for clips in by_source.values():
            out.extend(self.cut_source(sorted(clips, key=lambda r: r["start_frame"])))
        return self.table(out)

    def final_path(self, clip: dict[str, Any]) -> Path:
        return Path(self.clips_dir) / clip["source_id"] / f"{clip['clip_id']}.{self.container}"

    def command(self, clips: list[dict[str, Any]], partial: list[Path]) -> list[str]:
        first = clips[0]
        source = ffmpeg.input(media_input(first["path"]))
        # libx264/yuv420p need even dimensions; the crop is a no-op when they already are.
        video = source.video.filter("crop", "trunc(iw/2)*2", "trunc(ih/2)*2")
        videos = video.filter_multi_output("split", len(clips))
        audios = None
        if first["has_audio"]:
            audios = source.audio.filter_multi_output("asplit", len(clips))
            # Filters see timestamps relative to the file's earliest stream.
            starts = [s for s in (first["video_start_s"], first["audio_start_s"]) if s is not None]
            offset = (first["video_start_s"] or 0.0) - (min(starts) if starts else 0.0)
        outputs = []
        for i, (clip, path) in enumerate(zip(clips, partial, strict=True)):
            streams = [
                videos[i]
                .trim(start_frame=clip["start_frame"], end_frame=clip["end_frame"])
                .setpts("PTS-STARTPTS")
            ]
            options: dict[str, Any] = {
                "vcodec": self.video_codec,
                "preset": self.preset,
                "crf": self.crf,
                "pix_fmt": "yuv420p",
                "fps_mode": "passthrough",
                "threads": self.encoder_threads,
            }
            if audios is not None:
                streams.append(
                    audios[i]
                    .filter(
                        "atrim",
                        start=f"{offset + clip['start_s']:.6f}",
                        end=f"{offset + clip['end_s']:.6f}",
                    )
                    .filter("asetpts", "PTS-STARTPTS")
                )
                options.update({"acodec": self.audio_codec, "b:a": self.audio_bitrate})
            if self.container == "mp4":
                options["movflags"] = "+faststart"
            outputs.append(ffmpeg.output(*streams, media_input(str(path)), **options))
        return (
            ffmpeg.merge_outputs(*outputs)
            .global_args("-nostdin", "-hide_banner", "-v", "error", "-y")
            .compile(cmd=binary("ffmpeg"))
        )

    def cut_source(self, clips: list[dict[str, Any]]) -> list[dict[str, Any]]:
        finals = [self.final_path(c) for c in clips]
        partial = [p.with_name(f"{p.stem}.partial{p.suffix}") for p in finals]
        finals[0].parent.mkdir(parents=True, exist_ok=True)
        failure = None
        try:
            result = subprocess.run(
                self.command(clips, partial),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=self.timeout_s,
                check=False,
            )
            if result.returncode != 0:
                failure = f"ffmpeg exited with {result.returncode}: {stderr_summary(result.stderr)}"
        except subprocess.TimeoutExpired:
            failure = f"ffmpeg timed out after {self.timeout_s:.0f} s"
        rows = []
        for clip, part, final in zip(clips, partial, finals, strict=True):
            if failure is None and part.exists() and part.stat().st_size > 0:
                os.replace(part, final)
                rows.append(
                    {
                        **clip,
                        "cut_mode": "files",
                        "clip_path": str(final),
                        "clip_bytes": final.stat().st_size,
                        **kept(),
                    }
                )
                continue
            part.unlink(missing_ok=True)
            rows.append(
                {
                    **clip,
                    "cut_mode": "files",
                    "clip_path": None,
                    "clip_bytes": None,
                    **rejected("cut_failed", failure or "ffmpeg wrote an empty clip"),
                }
            )
        return rows
