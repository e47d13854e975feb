"""cut: materialise the kept clips, frame-accurate, audio kept, each source decoded once.

An ffmpeg run feeds several clips' encoders through `split` + `trim`, so the cost is at most
one decode of the source, not one per clip as with PySceneDetect's `split-video`; groups of
clips far apart are read from their own seek position (see `seek_groups`), so the stretches
between kept clips are not decoded at all. A clip's encoder runs on one thread (the only
setting that gives the same bytes every run), so a worker runs `threads` ffmpeg processes at
once: the seek groups of its sources side by side, big groups split in two at a clip boundary
while one would keep the others waiting (see `jobs`). Clips are written under a temporary
name and renamed once ffmpeg succeeded. In `virtual` mode nothing is written: later stages
decode `path` between `start_s` and `end_s` themselves.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import ffmpeg
import pyarrow as pa
from pydantic import Field

from curation.core import faults, schemas
from curation.core.config import Resources, Section
from curation.media.ffmpeg import binary, media_input, stderr_summary
from curation.rundir import RunDir
from curation.storage import Storage, is_object_store, local_copy
from stages.base import Stage, kept, rejected


class CutConfig(Section):
    """The `cut:` section: how kept clips are written (or left virtual)."""

    mode: Literal["files", "virtual"] = "files"
    # Same defaults as PySceneDetect's split-video, so benchmarks compare like with like.
    video_codec: str = "libx264"
    preset: str = "veryfast"
    crf: int = Field(22, ge=0, le=63)
    audio_codec: str = "aac"
    audio_bitrate: str = "128k"
    container: Literal["mp4", "mkv"] = "mp4"
    # x264 with more than one thread wrote different bytes for the same clip from run to run
    # when one ffmpeg process cut several seek groups (tests/stages/test_cut.py); one thread
    # per clip is reproducible, and `threads` ffmpeg processes run side by side instead.
    encoder_threads: int = Field(
        1, ge=0, description="encoder threads per clip; 1 is reproducible, 0: ffmpeg decides"
    )
    threads: int = Field(2, ge=1, description="ffmpeg processes at once per worker")
    seek_gap_s: float = Field(10.0, ge=0, description="clips further apart get their own seek")
    max_seeks: int = Field(8, ge=1, description="at most this many seek positions per source")
    timeout_s: float = Field(3600.0, gt=0)
    resources: Resources = Resources(cpus=1, concurrency=2)


def _cost(clips: list[dict[str, Any]]) -> float:
    """Pixels to encode."""
    return float(sum((c["end_frame"] - c["start_frame"]) * c["display_width"]
                     * c["display_height"] for c in clips))  # fmt: skip


def _makespan(jobs: list[list[dict[str, Any]]], threads: int) -> float:
    """When the last of `jobs` ends, run `threads` at a time, costliest first."""
    loads = [0.0] * threads
    for cost in sorted(map(_cost, jobs), reverse=True):
        loads[loads.index(min(loads))] += cost
    return max(loads)


@dataclass(kw_only=True)
class CutStage(Stage):
    name: ClassVar[str] = "cut"
    output_folder: ClassVar[str] = "clips"
    order: ClassVar[float | None] = 40
    schema: ClassVar[pa.Schema] = schemas.CLIPS
    adds: ClassVar[list[pa.Field]] = schemas.CLIP_COLUMNS
    reads: ClassVar[tuple[str, ...]] = ("clip_id", "source_id", "path", "start_frame", "end_frame")

    batch_rows: ClassVar[int] = 1_000_000  # a shard's clips at once: each source decoded once

    cfg: CutConfig
    media: Storage  # clips go to media/clips/<source_id>/<clip_id>.<container> in here

    @classmethod
    def build(cls, cfg: CutConfig, run: RunDir) -> CutStage:  # type: ignore[override]
        return cls(cfg=cfg, media=run.storage.child("media"))

    def process(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        if self.cfg.mode == "virtual":
            return self.table(
                [
                    {**r, "cut_mode": "virtual", "clip_path": None, "clip_bytes": None, **kept()}
                    for r in rows
                ]
            )
        by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_source[r["source_id"]].append(r)
        jobs = self.jobs([sorted(c, key=lambda r: r["start_frame"]) for c in by_source.values()])
        done = self.map_rows(self.cut_source, jobs, self.cfg.threads)
        order = {r["clip_id"]: i for i, r in enumerate(rows)}
        return self.table(sorted((r for rs in done for r in rs), key=lambda r: order[r["clip_id"]]))

    def jobs(self, sources: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        """The ffmpeg runs for these sources' clips (each list sorted by start), costliest first.

        A local source's seek groups are jobs of their own. Then the costliest job of several
        clips is split at the clip boundary nearest its middle, again and again, and the best
        of these plans is kept: the one that is done soonest (`threads` jobs at a time,
        costliest first), each split charged a second of its frames for the extra seek. So one
        long source does not leave the other threads idle. An object-store source stays one
        job, so it is fetched once; a variable-frame-rate one too, as it is never seeked.
        A clip's bytes do not depend on its job."""
        jobs = []
        for clips in sources:
            jobs.extend([clips] if is_object_store(clips[0]["path"]) else self.seek_groups(clips))
        best, best_end, extra = jobs, _makespan(jobs, self.cfg.threads), 0.0
        while True:
            splittable = [j for j in jobs if len(j) > 1 and not j[0]["vfr"]
                          and not is_object_store(j[0]["path"])]  # fmt: skip
            job = max(splittable, key=_cost, default=None)
            if job is None:
                break
            sums = list(itertools.accumulate(_cost([c]) for c in job))
            cut = min(range(1, len(job)), key=lambda k: abs(2 * sums[k - 1] - sums[-1]))
            jobs = [j for j in jobs if j is not job] + [job[:cut], job[cut:]]
            extra += job[0]["fps"] * job[0]["display_width"] * job[0]["display_height"]
            end = _makespan(jobs, self.cfg.threads) + extra
            if end < best_end:
                best, best_end = jobs, end
        return sorted(best, key=_cost, reverse=True)

    def clip_file(self, clip: dict[str, Any]) -> str:
        """Where a clip goes, relative to `media`."""
        return f"clips/{clip['source_id']}/{clip['clip_id']}.{self.cfg.container}"

    @contextlib.contextmanager
    def scratch(self, source_id: str) -> Iterator[Path]:
        """Where ffmpeg writes a source's clips: beside their final place on a local disk
        (renamed into it), a temporary folder when the media go to an object store."""
        if self.media.is_local:
            folder = self.media.local_path(f"clips/{source_id}")
            folder.mkdir(parents=True, exist_ok=True)
            yield folder
            return
        with tempfile.TemporaryDirectory(prefix="curation-cut-") as tmp:
            yield Path(tmp)

    def seek_groups(self, clips: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Clips that share one seek: neighbours closer than `seek_gap_s`, at most `max_seeks` groups.

        Each group becomes one input of the same ffmpeg process, opened at its own position, so
        long stretches between kept clips are never decoded. Variable-frame-rate sources are not
        seeked: their clips are cut by frame number from one pass over the whole file.
        """
        if clips[0]["vfr"]:
            return [clips]
        groups = [[clips[0]]]
        for clip in clips[1:]:
            if clip["start_s"] - groups[-1][-1]["end_s"] <= self.cfg.seek_gap_s:
                groups[-1].append(clip)
            else:
                groups.append([clip])
        while len(groups) > self.cfg.max_seeks:  # merge across the smallest gaps
            gaps = [b[0]["start_s"] - a[-1]["end_s"] for a, b in itertools.pairwise(groups)]
            k = gaps.index(min(gaps))
            groups[k : k + 2] = [groups[k] + groups[k + 1]]
        return groups

    def _video_trim(self, stream: Any, clip: dict[str, Any]) -> Any:
        if clip["vfr"]:
            return stream.trim(start_frame=clip["start_frame"], end_frame=clip["end_frame"])
        # Constant frame rate: frame k sits at start + k/fps; half-frame margins absorb rounding.
        t0, fps = clip["video_start_s"] or 0.0, clip["fps"]
        return stream.trim(
            start=f"{t0 + (clip['start_frame'] - 0.5) / fps:.6f}",
            end=f"{t0 + (clip['end_frame'] - 0.5) / fps:.6f}",
        )

    def command(
        self, clips: list[dict[str, Any]], partial: dict[str, Path], source_path: str
    ) -> list[str]:
        """One ffmpeg command for all clips of one source (timestamps kept as in the source);
        `source_path` is where the source can be read (a local copy of an object-store file)."""
        outputs = []
        for group in self.seek_groups(clips):
            options = {}
            if not group[0]["vfr"]:
                # Seek a second early (the file may start before its video stream) and read
                # only as far as the group's last clip; the trims below are exact.
                seek = max(0.0, group[0]["start_s"] - 1.0)
                options = {"ss": f"{seek:.6f}", "t": f"{group[-1]['end_s'] - seek + 1.0:.6f}"}
            source = ffmpeg.input(media_input(source_path), **options)
            # libx264/yuv420p need even dimensions; the crop is a no-op when they already are.
            video = source.video.filter("crop", "trunc(iw/2)*2", "trunc(ih/2)*2")
            videos = video.filter_multi_output("split", len(group))
            audios = (
                source.audio.filter_multi_output("asplit", len(group))
                if group[0]["has_audio"]
                else None
            )
            for i, clip in enumerate(group):
                streams = [self._video_trim(videos[i], clip).setpts("PTS-STARTPTS")]
                encode: dict[str, Any] = {
                    "vcodec": self.cfg.video_codec,
                    "preset": self.cfg.preset,
                    "crf": self.cfg.crf,
                    "pix_fmt": "yuv420p",
                    "fps_mode": "passthrough",
                    "threads": self.cfg.encoder_threads,
                }
                if audios is not None:
                    # Sound keeps its place against the frames: a track that starts after
                    # the clip's first frame gets silence in front, not pulled forward.
                    start = (clip["video_start_s"] or 0.0) + clip["start_s"]
                    streams.append(
                        audios[i]
                        .filter(
                            "atrim",
                            start=f"{start:.6f}",
                            end=f"{start + clip['end_s'] - clip['start_s']:.6f}",
                        )
                        .filter("asetpts", f"PTS-{start:.6f}/TB")
                        .filter("aresample", **{"async": 1, "first_pts": 0})
                    )
                    encode.update({"acodec": self.cfg.audio_codec, "b:a": self.cfg.audio_bitrate})
                if self.cfg.container == "mp4":
                    encode["movflags"] = "+faststart"
                outputs.append(
                    ffmpeg.output(*streams, media_input(str(partial[clip["clip_id"]])), **encode)
                )
        return (
            ffmpeg.merge_outputs(*outputs)
            .global_args("-nostdin", "-hide_banner", "-v", "error", "-y", "-copyts")
            .compile(cmd=binary("ffmpeg"))
        )

    def cut_source(self, clips: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self.scratch(clips[0]["source_id"]) as folder:
            return self._cut_into(folder, clips)

    def _cut_into(self, folder: Path, clips: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ext = self.cfg.container
        partial = {c["clip_id"]: folder / f"{c['clip_id']}.partial.{ext}" for c in clips}
        failure = None
        try:
            with local_copy(clips[0]["path"]) as source:
                result = subprocess.run(
                    self.command(clips, partial, source),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    timeout=self.cfg.timeout_s,
                    check=False,
                )
            if result.returncode != 0:
                faults.check(result.stderr, clips[0]["path"])  # a full disk, a lost mount
                failure = f"ffmpeg exited with {result.returncode}: {stderr_summary(result.stderr)}"
        except subprocess.TimeoutExpired:
            failure = f"ffmpeg timed out after {self.cfg.timeout_s:.0f} s"
        rows = []
        for clip in clips:
            part = partial[clip["clip_id"]]
            if failure is None and part.exists() and part.stat().st_size > 0:
                size = part.stat().st_size
                self.media.upload(part, self.clip_file(clip))
                rows.append(
                    {
                        **clip,
                        "cut_mode": "files",
                        "clip_path": self.media.uri(self.clip_file(clip)),
                        "clip_bytes": size,
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
