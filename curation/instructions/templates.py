"""Question templates per branch and field: pools of paraphrases, and the closed-set emotion
question with shuffled options (as in HumanOmni's emotion example).

Each template has an id (`branch.field.k`) recorded with the pair it made, so a pair can be
traced to its wording. Answers are the field's own text, so a pair says nothing the
structured fields (and so the consensus caption) do not.
"""

from __future__ import annotations

QUESTIONS: dict[str, dict[str, list[str]]] = {
    "face": {
        "appearance": [
            "Describe the facial features of the person in the video.",
            "What does the person's face look like?",
            "How would you describe the person's face and hair?",
        ],
        "expression": [
            "What facial expression does the person show?",
            "Describe the person's facial expression in the video.",
            "How does the person's expression look as the video goes on?",
        ],
        "emotion": [
            "What emotion does the person's face convey?",
            "Which emotion can you read from the person's face?",
            "How does the person seem to feel, judging by their face?",
        ],
        "gaze": [
            "Where is the person looking, and how is their head turned?",
            "Describe the person's gaze and head pose.",
            "In which direction does the person look?",
        ],
    },
    "body": {
        "appearance": [
            "Describe the appearance of the person in the video.",
            "What does the person look like?",
            "Give a short description of the person's build and appearance.",
        ],
        "clothing": [
            "What is the person wearing?",
            "Describe the person's clothing and accessories.",
            "What clothes does the person have on?",
        ],
        "action": [
            "What is the person doing in the video?",
            "Describe the person's actions.",
            "What action does the person perform?",
        ],
        "pose": [
            "Describe the person's body posture.",
            "What pose is the person in?",
            "How is the person positioned: their posture, arms and hands?",
        ],
    },
    "interaction": {
        "with_people": [
            "How does the person interact with other people in the video?",
            "Describe the interaction between the people in the video.",
            "What is happening between the person and the others around them?",
        ],
        "with_objects": [
            "Which objects does the person interact with, and how?",
            "What is the person holding or using?",
            "Describe how the person handles the objects around them.",
        ],
        "environment": [
            "Where does the video take place?",
            "Describe the setting of the video.",
            "What is the environment around the person like?",
        ],
    },
}

CAPTION_QUESTIONS = [
    "Describe this video in detail.",
    "Give a detailed description of what happens in the video.",
    "Describe the people in this video, what they do and where they are, in detail.",
]

EMOTION_CHOICE = (
    "What emotion does the person's face show? Choose one option.\n{options}\n"
    "Answer with the option's letter and the emotion."
)
LETTERS = "ABCD"
