"""The benchmarks' label sets, prompts and published numbers, in one place.

Emotion words are the HumanOmni release's (its evaluation prompt lists them as options); the
datasets' official label names and numbers map onto them.
"""

from __future__ import annotations

from curation.core.fields import RELEASE_EMOTIONS

EMOTION_PROMPT = (
    "As an emotional recognition expert, in the video, when the characters display their "
    "emotions, which predominant feeling is most clearly expressed?\n"
)
CLASSES: dict[str, tuple[str, ...]] = {"dfew": RELEASE_EMOTIONS[:7], "mafw": RELEASE_EMOTIONS}
# DFEW's fold CSVs number the classes 1-7 (its README's order).
DFEW_LABELS = {
    1: "happy",
    2: "sad",
    3: "neutral",
    4: "angry",
    5: "surprise",
    6: "disgust",
    7: "fear",
}
# MAFW's label names (and DFEW's written ones) → the release's words.
OFFICIAL_NAMES = {
    "happiness": "happy",
    "sadness": "sad",
    "anger": "angry",
    "contempt": "contemptuous",
    "disappointment": "disappointed",
    "helplessness": "helpless",
    "anxiety": "anxious",
}
# Other forms of the words an answer may use; each still names exactly one class.
EMOTION_ALIASES = OFFICIAL_NAMES | {
    "surprised": "surprise",
    "disgusted": "disgust",
    "fearful": "fear",
    "afraid": "fear",
}

# ViSpeak-Bench's first-stage question per subtask (its proactive protocol for offline models).
_ACTION = "You're watching a video. At this moment in the video, is there any gesture/action being made in the video? You can only answer yes or no"
VISPEAK_PROMPTS = {
    "gesture_understanding": "You're watching a video. At this moment in the video, is there any gesture being made in the video? You can only answer yes or no",
    "visual_wake_up": _ACTION,
    "visual_termination": _ACTION,
    "visual_interruption": _ACTION,
    "anomaly_warning": "You're watching a video. At this moment in the video, is there anything unusual happening in the video? You can only answer yes or no",
    "humor_reaction": "You're watching a video. At this moment in the video, is there anything funny happening in the video? You can only answer yes or no",
}
# ViSpeak-Bench's annotation files → subtask (Visual Reference has no timing score).
VISPEAK_FILES = {
    "Gesture_Understanding": "gesture_understanding",
    "Visual_Wake-Up": "visual_wake_up",
    "Visual_Termination": "visual_termination",
    "Visual_Interruption": "visual_interruption",
    "Anomaly_Warning": "anomaly_warning",
    "Humor_Reaction": "humor_reaction",
}

# The paper's HumanOmni row (arXiv 2501.15111, Tables 2-4), metric name → value; percentages
# as fractions, so they sit beside this project's numbers.
PAPER = {
    "dfew": {"uar": 0.7486, "war": 0.8246},
    "mafw": {"uar": 0.5294, "war": 0.6840},
    "dfec": {
        "cider": 0.412,
        "rouge_l": 0.468,
        "judge_correctness": 4.58,
        "judge_detail": 4.41,
        "judge_context": 4.70,
        "judge_temporal": 4.41,
    },
}
