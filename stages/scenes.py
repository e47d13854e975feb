"""scenes: one reduced-resolution decode pass per source -> scene cuts, keyframes and motion.

ffmpeg decodes and shrinks the frames (to `analysis_width`, displayed aspect) in its own
process; this process runs PySceneDetect's detector and the keyframe tracker on each frame as
it arrives. Nothing else decodes the source before the cut stage. Scenes longer than
`max_duration_s` are split into equal windows; scenes shorter than `min_duration_s` are
rejected (`too_short`), except a run of them that together are not: a montage, one segment
(`group_scenes`) that the temporal filter judges by its cuts. A source that yields no frame becomes one rejected row
(`decode_failed`), so no source disappears.

Damage: when ffmpeg logs a decode error (of the pictures or of the first sound stream, which
the same pass decodes), curation/media/damage.py locates it in time: the frames the decoder
concealed or lost and those predicted from them. A window with damaged frames is trimmed to
its clean parts (`damaged_clips: trim`; a clean part shorter than `min_duration_s` is
rejected) or rejected whole (`reject`); damaged parts are rejected rows (`corrupt_frames`,
the span in `reject_detail`). Frames lost to errors do not shift the times of what follows:
frame numbers come from the frames' own timestamps. Damaged sound is not a verdict here: each
row carries `audio_damaged_s`, and the signals stage, which needs the sound, decides. When
the damage cannot be located, the whole source is one rejected row (`corrupt_stream`).
"""

from __future__ import annotations

import bisect
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
from curation.media import damage as dmg
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
    frames, clip length bounds and what becomes of damaged frames."""

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
    damaged_clips: Literal["trim", "reject"] = Field(
        "trim", description="a window with damaged frames: cut to its clean parts, or rejected"
    )
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


@dataclass
class Analysis:
    """What the decode pass of one source found."""

    cuts: list[int]  # frames where a scene starts (decoded frame order)
    tracker: KeyframeTracker
    stream: FrameStream
    damage: dmg.Damage | None = None  # located when ffmpeg logged errors
    unlocated: str | None = None  # why the damage could not be located
    audio_unreadable: str | None = None  # why no sound at all could be decoded


def frame_numbers(damage: dmg.Damage | None, decoded: int, fps: float, vfr: bool) -> list[int]:
    """The source frame number of each decoded frame: its position, unless frames were lost
    on the way (a constant-rate source's frames then sit at their timestamps, as the cut will
    find them; a variable-rate one is cut by decoded frame, so positions stay). Inside damage
    a decoder may put out frames out of order: the numbers are their sorted times, kept
    increasing (the out-of-order frames are damaged, so rejected, anyway)."""
    if damage is None or vfr:
        return list(range(decoded))
    numbers: list[int] = []
    for t in sorted(damage.frame_times):
        numbers.append(max(round(t * fps), numbers[-1] + 1 if numbers else 0))
    return numbers


def damaged_frames(
    damage: dmg.Damage | None, numbers: list[int], fps: float, vfr: bool
) -> list[tuple[int, int]]:
    """The damaged spans as frame ranges [a, b) in the numbering of `frame_numbers`: by
    time x fps on a constant-rate source, by the decoded frames' own times on a variable-rate
    one (where frames are numbered by position)."""
    if damage is None:
        return []
    last = numbers[-1] + 1
    if vfr:
        times = sorted(damage.frame_times)
        return [(bisect.bisect_left(times, a), bisect.bisect_left(times, b))
                for a, b in damage.video]  # fmt: skip
    return [(round(a * fps), last if math.isinf(b) else min(round(b * fps), last))
            for a, b in damage.video]  # fmt: skip


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

    def analyse(self, source: dict[str, Any]) -> Analysis:
        """Decode once (and, when ffmpeg logged errors, locate the damage)."""
        with local_copy(source["path"]) as path:  # an object-store file: fetched first
            audio = bool(source.get("has_audio"))
            found = self.decode(source, path, audio)
            if audio and not found.stream.frames:  # a sound no decoder reads stops ffmpeg
                found = self.decode(source, path, False)
                if found.stream.frames:
                    found.audio_unreadable = "no decoder could read the sound"
        return found

    def decode(self, source: dict[str, Any], path: str, audio: bool) -> Analysis:
        """The decode pass over a local file (the first sound stream too with `audio`)."""
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
        stream = FrameStream(path, width, height, self.cfg.scale_flags, self.cfg.timeout_s,
                             check_audio=audio)  # fmt: skip
        for index, frame in enumerate(stream):
            cuts = detector.process_frame(FrameTimecode(index, fps), frame)
            tracker.add_cuts([c.frame_num for c in cuts])
            tracker.push(index, frame)
        found = Analysis([], tracker, stream)
        if stream.messages and stream.frames:
            try:
                found.damage = dmg.locate(path, audio=audio, timeout_s=self.cfg.timeout_s)
            except dmg.DamageUnknown as error:
                found.unlocated = str(error)
            if found.damage and len(found.damage.frame_times) != stream.frames:
                found.unlocated = (
                    f"the damage was located on {len(found.damage.frame_times)} frames "
                    f"but {stream.frames} were decoded"
                )
        if index >= 0:
            tracker.add_cuts(
                [c.frame_num for c in detector.post_process(FrameTimecode(index, fps))]
            )
        tracker.finish()
        found.cuts = sorted(c for c in tracker.cuts if 0 < c < stream.frames)
        return found

    def split_source(self, source: dict[str, Any]) -> list[dict[str, Any]]:
        carried = {k: source[k] for k in CARRIED}
        found = self.analyse(source)
        stream, damage, n = found.stream, found.damage, found.stream.frames
        fps = float(source["fps"])
        expected = source.get("frame_count") or (
            round(source["duration_s"] * fps) if source.get("duration_s") else None
        )
        sound = found.audio_unreadable and f"sound not decodable: {found.audio_unreadable}"
        note = "; ".join(x for x in (decode_note(stream, expected), damage and damage.note(),
                                     sound) if x) or None  # fmt: skip

        def sound_damaged(start: float, end: float) -> float | None:
            """Seconds of [start, end) whose sound could not be decoded (None: no sound)."""
            if not source.get("has_audio"):
                return None
            if found.audio_unreadable:
                return end - start
            return dmg.overlap(damage.audio if damage else [], start, end)

        def whole_source(verdict: dict[str, Any]) -> list[dict[str, Any]]:
            return [{**carried, "clip_id": clip_id(source["source_id"], 0, 0),
                     "source_frames_decoded": n, "decode_note": note, **verdict}]  # fmt: skip

        if n == 0:
            return whole_source(
                rejected("decode_failed", f"no frame could be decoded: {note or 'no error'}")
            )
        if found.unlocated:  # which frames are clean is unknown: none of them is kept
            return whole_source(rejected("corrupt_stream", f"{found.unlocated}: {note}"))
        numbers = frame_numbers(damage, n, fps, bool(source["vfr"]))
        bad = damaged_frames(damage, numbers, fps, bool(source["vfr"]))
        bounds = [0, *(numbers[c] for c in found.cuts), numbers[-1] + 1]
        rows = []
        for s, e, scene_index in group_scenes(bounds, fps, self.cfg.min_duration_s):
            scene_s = (e - s) / fps
            too_short = scene_s < self.cfg.min_duration_s
            windows = [(s, e)] if too_short else split_windows(s, e, fps, self.cfg.max_duration_s)
            for window_index, (ws, we) in enumerate(windows):
                if too_short:
                    verdicts = [(ws, we, rejected("too_short", f"scene of {scene_s:.2f} s < "
                                                  f"min_duration_s {self.cfg.min_duration_s}"))]  # fmt: skip
                else:
                    verdicts = self.judge_damage(ws, we, bad, fps)
                for ps, pe, verdict in verdicts:
                    dyn = found.tracker.window(
                        bisect.bisect_left(numbers, ps), bisect.bisect_left(numbers, pe)
                    )
                    duration = (pe - ps) / fps
                    rows.append(
                        {
                            **carried,
                            "clip_id": clip_id(source["source_id"], ps, pe),
                            "scene_index": scene_index,
                            "window_index": window_index,
                            "start_frame": ps,
                            "end_frame": pe,
                            "start_s": ps / fps,
                            "end_s": pe / fps,
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
                            "audio_damaged_s": sound_damaged(ps / fps, pe / fps),
                            **verdict,
                        }
                    )
        return rows

    def judge_damage(
        self, start: int, end: int, bad: list[tuple[int, int]], fps: float
    ) -> list[tuple[int, int, dict[str, Any]]]:
        """A window's verdicts: kept whole when clean; else its clean parts that last
        `min_duration_s` are kept (`damaged_clips: trim`; none with `reject`) and each run of
        frames between them is one rejected row naming its damaged spans."""
        parts = dmg.pieces(start, end, bad)
        if not any(hurt for _, _, hurt in parts):
            return [(start, end, kept())]
        keep = [] if self.cfg.damaged_clips == "reject" else [
            (a, b) for a, b, hurt in parts if not hurt and (b - a) / fps >= self.cfg.min_duration_s
        ]  # fmt: skip

        def dropped(a: int, b: int) -> tuple[int, int, dict[str, Any]]:
            spans = [(x / fps, y / fps) for x, y, hurt in dmg.pieces(a, b, bad) if hurt]
            detail = ("frames concealed or lost by the decoder, or predicted from such, in "
                      f"{dmg.fmt_spans(spans)}")  # fmt: skip
            if self.cfg.damaged_clips == "reject":
                detail += " (damaged_clips: reject)"
            elif sum(y - x for x, y in spans) < (b - a) / fps - 1e-9:
                detail += f"; the clean frames between them last < {self.cfg.min_duration_s} s"
            return (a, b, rejected("corrupt_frames", detail))

        out, at = [], start
        for a, b in keep:
            if a > at:
                out.append(dropped(at, a))
            out.append((a, b, kept()))
            at = b
        if at < end:
            out.append(dropped(at, end))
        return out
