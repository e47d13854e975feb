"""scenes: one reduced-resolution decode pass per source -> scene cuts, keyframes and motion.

ffmpeg decodes and shrinks the frames (to `analysis_width`, displayed aspect) in its own
process; this process runs PySceneDetect's detector and the keyframe tracker on each frame as
it arrives. Nothing else decodes the source before the cut stage. Scenes longer than
`max_duration_s` are split into equal windows; scenes shorter than `min_duration_s` are
rejected (`too_short`), except a run of them that together are not: a montage, one segment
(`group_scenes`) that the temporal filter judges by its cuts. A source that yields no frame becomes one rejected row
(`decode_failed`), so no source disappears. Decode errors are counted into `decode_note`
with the frames decoded against the probed count; a source that logs errors and loses more
than `max_lost_share` of its frames is one rejected row (`corrupt_stream`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, model_validator
from scenedetect import FrameTimecode
from scenedetect.detectors import (
    AdaptiveDetector,
    ContentDetector,
    HashDetector,
    HistogramDetector,
    ThresholdDetector,
)

from curation.core import schemas
from curation.core.config import Resources, Section
from curation.core.ids import clip_id
from curation.media.ffmpeg import FrameStream
from curation.media.keyframes import KeyframeTracker
from curation.storage import local_copy
from stages.base import Stage, kept, rejected

# detector name -> (class, name of its threshold argument)
DETECTORS = {
    "adaptive": (AdaptiveDetector, "adaptive_threshold"),
    "content": (ContentDetector, "threshold"),
    "threshold": (ThresholdDetector, "threshold"),
    "hash": (HashDetector, "threshold"),
    "histogram": (HistogramDetector, "threshold"),
}

CARRIED = schemas.SOURCE_COLUMNS_ON_CLIPS


class ScenesConfig(Section):
    """The `scenes:` section: the scene detector, the keyframe and dynamics measures on the same
    frames, clip length bounds and the corrupt-stream rule."""

    detector: Literal["adaptive", "content", "threshold", "hash", "histogram"] = "adaptive"
    # None keeps the detector's own default threshold.
    threshold: float | None = Field(None, gt=0)
    min_scene_len_frames: int = Field(15, ge=1, description="detector: frames between two cuts")
    analysis_width: int = Field(256, ge=16, description="frames are decoded at this width")
    # PySceneDetect's thresholds were tuned on frames shrunk by cv2 INTER_LINEAR, which at large
    # factors samples a 2x2 neighbourhood (close to point sampling); ffmpeg's `neighbor` scaler
    # reproduces its goldens exactly, area averaging does not (see README, "Scene detection").
    scale_flags: str = "neighbor"
    # Keyframes and dynamics (curation/media/keyframes.py) on grey frames `keyframe_width` wide: a
    # keyframe when, in some cell of a `keyframe_grid`-square raster, more than
    # `keyframe_cell_share` of the pixels changed by more than `keyframe_pixel_delta` levels
    # since the last keyframe (a person small in a wide shot moves within a few cells).
    # Defaults from the labelled clips of `make bench-temporal-quality`.
    keyframe_width: int = Field(128, ge=16)
    keyframe_grid: int = Field(16, ge=1, le=64)
    keyframe_pixel_delta: int = Field(20, ge=1, le=255)
    keyframe_cell_share: float = Field(0.25, gt=0, le=1)
    flash_delta: float = Field(12.0, gt=0, description="mean brightness jump of a flash, levels")
    jump_share: float = Field(
        0.6, gt=0, le=1, description="pixels changed after global alignment: a jump (a cut)"
    )
    min_duration_s: float = Field(1.0, ge=0)
    max_duration_s: float = Field(30.0, gt=0, description="longer scenes are split into windows")
    max_lost_share: float = Field(
        0.02, ge=0, le=1,
        description="a source that logs decode errors and decodes fewer frames than this "
        "share below its probed count is rejected as corrupt_stream",
    )  # fmt: skip
    timeout_s: float = Field(3600.0, gt=0)
    threads: int = Field(2, ge=1, description="sources decoded at once per worker")
    resources: Resources = Resources(cpus=1, concurrency=4)

    @model_validator(mode="after")
    def _bounds(self) -> ScenesConfig:
        # Long scenes are split into equal windows of at least max/2: keep those above the minimum.
        if self.max_duration_s < 2 * self.min_duration_s:
            raise ValueError("max_duration_s must be at least twice min_duration_s")
        return self


def decode_note(stream: FrameStream, expected: int | None) -> str | None:
    """What went wrong decoding a source, for its rows (None when nothing did)."""
    parts = [stream.error] if stream.error else []
    if stream.messages:
        of = f" of {expected}" if expected else ""
        parts.append(
            f"{stream.messages} decode error(s), {stream.frames}{of} frames decoded "
            f"(last: {stream.last_message})"
        )
    return "; ".join(parts) or None


def split_windows(start: int, end: int, fps: float, max_duration_s: float) -> list[tuple[int, int]]:
    """Split [start, end) into the fewest equal windows no longer than max_duration_s."""
    n = end - start
    count = max(1, math.ceil(n / fps / max_duration_s - 1e-9))
    bounds = [start + round(i * n / count) for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def group_scenes(
    bounds: list[int], fps: float, min_duration_s: float
) -> list[tuple[int, int, int]]:
    """Scenes as (start, end, index of the first): a run of two or more consecutive scenes,
    each shorter than min_duration_s but together not, is one segment, a *montage*, whose
    cuts count as jumps (curation/media/keyframes.py), so the temporal filter judges it `chaotic`
    rather than each shot being `too_short`."""
    scenes = list(zip(bounds[:-1], bounds[1:], strict=True))
    out: list[tuple[int, int, int]] = []
    i = 0
    while i < len(scenes):
        j = i
        while j < len(scenes) and (scenes[j][1] - scenes[j][0]) / fps < min_duration_s:
            j += 1
        run = scenes[i:j]
        if len(run) >= 2 and (run[-1][1] - run[0][0]) / fps >= min_duration_s:
            out.append((run[0][0], run[-1][1], i))
        else:
            out.extend((s, e, i + k) for k, (s, e) in enumerate(run))
        if j < len(scenes):
            out.append((*scenes[j], j))
        i = j + 1
    return out


@dataclass(kw_only=True)
class ScenesStage(Stage):
    name: ClassVar[str] = "scenes"
    output_folder: ClassVar[str] = "scenes"
    order: ClassVar[float | None] = 20
    schema: ClassVar[pa.Schema] = schemas.SCENES
    reads: ClassVar[tuple[str, ...]] = tuple(CARRIED)

    reshards: ClassVar[bool] = True

    cfg: ScenesConfig

    def make_detector(self):
        cls, threshold_arg = DETECTORS[self.cfg.detector]
        kwargs: dict[str, Any] = {"min_scene_len": self.cfg.min_scene_len_frames}
        if self.cfg.threshold is not None:
            kwargs[threshold_arg] = self.cfg.threshold
        return cls(**kwargs)

    def process(self, batch: pa.Table) -> pa.Table:
        # ffmpeg decodes in its own process and OpenCV/NumPy release the GIL, so a second
        # source in flight fills the gaps (process start-up, short files) of the first.
        per_source = self.map_rows(self.split_source, batch.to_pylist(), self.cfg.threads)
        return self.table([row for rows in per_source for row in rows])

    def analyse(self, source: dict[str, Any]) -> tuple[list[int], KeyframeTracker, FrameStream]:
        """Decode once; return the cut frames, the keyframe tracker and the finished stream."""
        dw, dh = source["display_width"], source["display_height"]
        width = min(self.cfg.analysis_width, dw)
        height = max(2, round(width * dh / dw))
        fps = float(source["fps"])
        detector = self.make_detector()
        tracker = KeyframeTracker(
            width=self.cfg.keyframe_width,
            grid=self.cfg.keyframe_grid,
            pixel_delta=self.cfg.keyframe_pixel_delta,
            cell_share=self.cfg.keyframe_cell_share,
            flash_delta=self.cfg.flash_delta,
            jump_share=self.cfg.jump_share,
            delay=detector.event_buffer_length + 1,
        )
        index = -1
        with local_copy(source["path"]) as path:  # an object-store file: fetched first
            stream = FrameStream(path, width, height, self.cfg.scale_flags, self.cfg.timeout_s)
            for index, frame in enumerate(stream):
                cuts = detector.process_frame(FrameTimecode(index, fps), frame)
                tracker.add_cuts([c.frame_num for c in cuts])
                tracker.push(index, frame)
        if index >= 0:
            tracker.add_cuts(
                [c.frame_num for c in detector.post_process(FrameTimecode(index, fps))]
            )
        tracker.finish()
        cuts = sorted(c for c in tracker.cuts if 0 < c < stream.frames)
        return cuts, tracker, stream

    def split_source(self, source: dict[str, Any]) -> list[dict[str, Any]]:
        carried = {k: source[k] for k in CARRIED}
        cuts, tracker, stream = self.analyse(source)
        n = stream.frames
        fps = float(source["fps"])
        expected = source.get("frame_count") or (
            round(source["duration_s"] * fps) if source.get("duration_s") else None
        )
        note = decode_note(stream, expected)

        def whole_source(verdict: dict[str, Any]) -> list[dict[str, Any]]:
            return [{**carried, "clip_id": clip_id(source["source_id"], 0, 0),
                     "source_frames_decoded": n, "decode_note": note, **verdict}]  # fmt: skip

        if n == 0:
            return whole_source(
                rejected("decode_failed", f"no frame could be decoded: {note or 'no error'}")
            )
        # Bit errors: ffmpeg logs them and drops what it cannot decode; clips cut from what is
        # left would neither match the source's times nor its content.
        if stream.messages and expected and n < expected * (1 - self.cfg.max_lost_share):
            lost = 1 - n / expected
            return whole_source(rejected(
                "corrupt_stream",
                f"{lost:.0%} of {expected} frames lost to decode errors "
                f"(> max_lost_share {self.cfg.max_lost_share}): {note}",
            ))  # fmt: skip
        rows = []
        for s, e, scene_index in group_scenes([0, *cuts, n], fps, self.cfg.min_duration_s):
            scene_s = (e - s) / fps
            too_short = scene_s < self.cfg.min_duration_s
            windows = [(s, e)] if too_short else split_windows(s, e, fps, self.cfg.max_duration_s)
            for window_index, (ws, we) in enumerate(windows):
                dyn = tracker.window(ws, we)
                duration = (we - ws) / fps
                verdict = (
                    rejected(
                        "too_short",
                        f"scene of {scene_s:.2f} s < min_duration_s {self.cfg.min_duration_s}",
                    )
                    if too_short
                    else kept()
                )
                rows.append(
                    {
                        **carried,
                        "clip_id": clip_id(source["source_id"], ws, we),
                        "scene_index": scene_index,
                        "window_index": window_index,
                        "start_frame": ws,
                        "end_frame": we,
                        "start_s": ws / fps,
                        "end_s": we / fps,
                        "duration_s": duration,
                        "keyframes": dyn.keyframes,
                        "keyframe_rate": dyn.keyframes / duration,
                        "motion_mean": dyn.motion_mean,
                        "motion_max": dyn.motion_max,
                        "flash_rate": dyn.flashes / duration,
                        "jump_rate": dyn.jumps / duration,
                        "flicker": dyn.flicker,
                        "source_frames_decoded": n,
                        "decode_note": note,
                        **verdict,
                    }
                )
        return rows
