"""The explicit Arrow schema of every stage's Parquet folder.

Each stage carries its input columns forward and adds its own, so every folder can be read on
its own. `kept`/`reject_reason` always describe the stage that wrote the folder: a row rejected
by a stage stays in that stage's folder with its reason and is not passed on.
Frame ranges are half-open: [start_frame, end_frame), PySceneDetect's convention.
"""

from __future__ import annotations

import pyarrow as pa

from curation.core.fields import STRUCT as FIELDS_STRUCT

VERDICT = [
    pa.field("kept", pa.bool_(), nullable=False),
    pa.field("reject_reason", pa.string()),  # a short code; null when kept
    pa.field("reject_detail", pa.string()),  # human-readable explanation
]

INPUTS = pa.schema(
    [
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
    ]
)

SOURCES = pa.schema(
    [
        *INPUTS,
        pa.field("file_size_bytes", pa.int64()),
        pa.field("container", pa.string()),
        pa.field("video_codec", pa.string()),
        pa.field("audio_codec", pa.string()),
        pa.field("has_audio", pa.bool_()),
        pa.field("coded_width", pa.int32()),
        pa.field("coded_height", pa.int32()),
        pa.field("sample_aspect_ratio", pa.float64()),
        pa.field("rotation", pa.int32()),
        pa.field("display_width", pa.int32()),
        pa.field("display_height", pa.int32()),
        pa.field("fps", pa.float64()),
        pa.field("vfr", pa.bool_()),
        pa.field("duration_s", pa.float64()),
        pa.field("frame_count", pa.int64()),  # from the container; null when it does not say
        pa.field("video_start_s", pa.float64()),
        pa.field("audio_start_s", pa.float64()),
        *VERDICT,
    ]
)

# Columns of a source that every clip row repeats, so later stages need no join.
SOURCE_COLUMNS_ON_CLIPS = [
    "source_id",
    "path",
    "display_width",
    "display_height",
    "fps",
    "vfr",
    "has_audio",
    "video_start_s",
    "audio_start_s",
]

SCENES = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        *[SOURCES.field(name) for name in SOURCE_COLUMNS_ON_CLIPS],
        pa.field("scene_index", pa.int32()),  # which detected scene of the source
        pa.field("window_index", pa.int32()),  # which window of a long scene (0 if not split)
        pa.field("start_frame", pa.int64()),
        pa.field("end_frame", pa.int64()),
        pa.field("start_s", pa.float64()),
        pa.field("end_s", pa.float64()),
        pa.field("duration_s", pa.float64()),
        pa.field("keyframes", pa.int32()),
        pa.field("keyframe_rate", pa.float64()),  # keyframes per second
        pa.field(
            "flash_rate", pa.float64()
        ),  # brightness jumps per second (curation/media/keyframes.py)
        # frames that changed whole after global alignment, and cuts inside a montage, per second
        pa.field("jump_rate", pa.float64()),
        # minus the mean correlation of consecutive frame differences: 0 for motion, 0.5 for noise
        pa.field("flicker", pa.float64()),
        pa.field("motion_mean", pa.float64()),  # mean grey-level change between frames, 0-255
        pa.field("motion_max", pa.float64()),
        pa.field("source_frames_decoded", pa.int64()),
        # ffmpeg's complaint and, when it logged errors, where the damage was (media/damage.py)
        pa.field("decode_note", pa.string()),
        # seconds of the clip's sound that could not be decoded (null: the source has none)
        pa.field("audio_damaged_s", pa.float64()),
        *VERDICT,
    ]
)


def carry(schema: pa.Schema) -> list[pa.Field]:
    """A folder's columns without its verdict: what the next stage carries forward."""
    return [f for f in schema if f.name not in ("kept", "reject_reason", "reject_detail")]


def extend(previous: pa.Schema, added: list[pa.Field]) -> pa.Schema:
    """The schema of a stage that carries `previous` forward and adds `added` and a verdict."""
    return pa.schema([*carry(previous), *added, *VERDICT])


# The columns each carrying stage adds. Stage order comes from config, so a stage's full
# schema is `extend(<the previous stage's schema>, <its columns>)`, bound when the pipeline is
# built; the constants below are the schemas in the default order.
TEMPORAL_COLUMNS = [
    pa.field("temporal_verdict", pa.string()),  # "ok", "static" or "chaotic", even if score-only
]

CLIP_COLUMNS = [
    pa.field("cut_mode", pa.string()),  # "files" or "virtual"
    pa.field("clip_path", pa.string()),  # null for virtual clips
    pa.field("clip_bytes", pa.int64()),
]

BOX = pa.struct(
    [
        pa.field("frame", pa.int32()),  # which sampled frame (0-based)
        pa.field("t_s", pa.float64()),  # its time in the clip, seconds
        pa.field("cls", pa.string()),  # "face" or "person"
        pa.field("x1", pa.float32()),  # pixels of the displayed video
        pa.field("y1", pa.float32()),
        pa.field("x2", pa.float32()),
        pa.field("y2", pa.float32()),
        pa.field("nx1", pa.float32()),  # the same, divided by displayed width/height
        pa.field("ny1", pa.float32()),
        pa.field("nx2", pa.float32()),
        pa.field("ny2", pa.float32()),
        pa.field("score", pa.float32()),  # the detector's own confidence (see README)
    ]
)

BOX_COLUMNS = [
    pa.field("boxes", pa.list_(BOX)),
    pa.field("box_detectors", pa.string()),  # e.g. "face=dlib_hog person=ssdlite"
    pa.field("frames_sampled", pa.int32()),
    pa.field("frames_with_face", pa.int32()),
    pa.field("frames_with_person", pa.int32()),
    pa.field("frames_with_human", pa.int32()),  # a face or a person
    pa.field("max_faces", pa.int32()),
    pa.field("max_persons", pa.int32()),
    pa.field("face_area_ratio", pa.float64()),  # mean share of the frame covered by faces
]

WORD = pa.struct(
    [
        pa.field("start_s", pa.float64()),  # seconds from the clip's first frame
        pa.field("end_s", pa.float64()),
        pa.field("word", pa.string()),
        pa.field("probability", pa.float32()),  # the recogniser's own confidence
    ]
)

KEYPOINT = pa.struct(
    [
        pa.field("x", pa.float32()),  # normalised to the displayed frame, 0..1 inside it
        pa.field("y", pa.float32()),
        pa.field("visibility", pa.float32()),  # the pose model's confidence the point is in view
    ]
)

POSE = pa.struct(
    [
        pa.field("frame", pa.int32()),  # which sampled frame (0-based)
        pa.field("t_s", pa.float64()),  # its time in the clip, seconds
        pa.field("points", pa.list_(KEYPOINT)),  # in `pose_layout` order; [] when no person
    ]
)

SIGNAL_COLUMNS = [
    pa.field("speech_s", pa.float64()),  # seconds of speech found; 0.0 without speech or audio
    pa.field("speech_segments", pa.list_(pa.list_(pa.float64(), 2))),  # [start, end] seconds
    pa.field("transcript", pa.string()),  # null when no speech was found (or ASR is off)
    pa.field("transcript_language", pa.string()),
    pa.field("transcript_words", pa.list_(WORD)),
    # 0..1 (stages/signals.py): the mouth's fit to the speech at the best offset, above chance;
    # null without a face or speech
    pa.field("lip_sync", pa.float64()),
    pa.field("lip_sync_offset_s", pa.float64()),  # > 0: the sound is late by this much
    # the backend's own measure there: Pearson r (landmarks), SyncNet's confidence (syncnet)
    pa.field("lip_sync_raw", pa.float64()),
    pa.field("framing", pa.string()),  # close_up, half_body, full_body or none
    pa.field("pose_visible", pa.float64()),  # mean share of 12 body joints in view; 0: no person
    pa.field("pose_layout", pa.string()),  # the keypoint set: blazepose33 or coco17
    pa.field("keypoints", pa.list_(POSE)),  # one entry per sampled frame
    pa.field("signal_models", pa.string()),  # e.g. "vad=silero asr=bundled:tiny.en ..."
]

EVENT = pa.struct(
    [
        pa.field("type", pa.string()),  # raise_hand, wave, stop, point, approach, leave
        pa.field("start_s", pa.float64()),  # seconds from the clip's first frame
        pa.field("end_s", pa.float64()),
        pa.field("confidence", pa.float32()),  # joints' mean visibility, or the face score
        pa.field("person", pa.int32()),  # which appearance of a person in the clip, from 0
        pa.field("hands", pa.string()),  # left, right (the person's own) or both; null: no hand
    ]
)

EVENT_COLUMNS = [
    pa.field("events", pa.list_(EVENT)),  # in time order; [] when nothing happens
    pa.field("event_fps", pa.float64()),  # frames per second the events were read at
    pa.field("event_models", pa.string()),  # e.g. "pose=mediapipe face=mediapipe"
]

CAPTION_COLUMNS = [
    pa.field("brief_caption", pa.string()),
    pa.field("caption_model", pa.string()),
    pa.field("caption_prompt_hash", pa.string()),
    pa.field("caption_prompt_tokens", pa.int64()),
    pa.field("caption_completion_tokens", pa.int64()),
    pa.field("caption_attempts", pa.int32()),
]

EMBED_COLUMNS = [
    # unit-length embedding of brief_caption (embed.dtype); null when there is no caption
    pa.field("caption_embedding", pa.list_(pa.float16())),
    pa.field("embed_model", pa.string()),
]

DEDUP_COLUMNS = [
    pa.field("duplicate_of", pa.string()),  # the kept clip whose caption this one repeats
    pa.field("similarity", pa.float32()),  # cosine similarity of the two brief captions
]

CANDIDATE = pa.struct(
    [
        pa.field("model", pa.string()),  # the configured name of the captioner
        pa.field("text", pa.string()),  # null when this model gave no usable caption
        pa.field("error", pa.string()),  # why not
        pa.field("prompt_hash", pa.string()),
        pa.field("completion_tokens", pa.int64()),
        pa.field("attempts", pa.int32()),
    ]
)

DETAILED_COLUMNS = [
    pa.field("candidates", pa.list_(CANDIDATE)),
    pa.field("candidates_ok", pa.int32()),
]

CONSENSUS_COLUMNS = [
    pa.field("consensus", pa.string()),  # the detailed caption used from here on
    pa.field("consensus_model", pa.string()),  # the LLM, or "extractive"
    pa.field("consensus_prompt_hash", pa.string()),
    pa.field("consensus_attempts", pa.int32()),
    pa.field("agreement", pa.float64()),  # independent of the LLM; see curation/consensus.py
    pa.field("consensus_sentences", pa.int32()),
    pa.field("supported_sentences", pa.int32()),
]

STRUCTURE_COLUMNS = [
    pa.field("fields", FIELDS_STRUCT),  # face/body/interaction strings; "" = not described
    pa.field("fields_ungrounded", pa.list_(pa.string())),  # cleared: the caption does not say it
    pa.field("fields_model", pa.string()),
    pa.field("fields_prompt_hash", pa.string()),
    pa.field("fields_attempts", pa.int32()),
]

TEMPORAL = extend(SCENES, TEMPORAL_COLUMNS)
CLIPS = extend(TEMPORAL, CLIP_COLUMNS)
BOXES = extend(CLIPS, BOX_COLUMNS)
SIGNALS = extend(BOXES, SIGNAL_COLUMNS)
EVENTS = extend(SIGNALS, EVENT_COLUMNS)
CAPTIONS = extend(EVENTS, CAPTION_COLUMNS)
EMBEDDINGS = extend(CAPTIONS, EMBED_COLUMNS)
DEDUP = extend(CAPTIONS, DEDUP_COLUMNS)  # dedup drops the embeddings: they stay in embeddings/
DETAILED = extend(DEDUP, DETAILED_COLUMNS)
CONSENSUS = extend(DETAILED, CONSENSUS_COLUMNS)
STRUCTURED = extend(CONSENSUS, STRUCTURE_COLUMNS)
