"""Face crops against full frames for the face branch, on a tiny training run.

    python bench/face_crops.py [--clips 48] [--steps 60] [--seeds 2] [--lr 5e-3]

A synthetic task where only the face answers, in real video files: each clip is noise of a
random brightness (a distractor) with a small "face" square (a fifth of the frame's width,
at a random place) that is bright ("smiling") or dark ("frowning"), and its face track as
`make instructions` exports it. The tiny model's face branch alone trains (stage 1a's recipe:
`model.branch: face`, the face projector) on three quarters of the clips, once with
`data.face_crops: true` and once with the full frames (the release's behaviour), through the
trainer's own data path. Measured on the held-out quarter: the share of clips whose right
answer the model finds more likely than the wrong one, and the answer's loss.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.instructions.exports import sample, write_export  # noqa: E402
from model.data.dataset import OmniDataset, collate  # noqa: E402
from model.data.records import record_from_item  # noqa: E402
from model.train.config import load_train_config  # noqa: E402
from model.train.loop import train  # noqa: E402

ANSWERS = ("smiling", "frowning")
QUESTION = "What emotion does the person show?"
W, H, FPS, FRAMES = 160, 120, 8, 16
REPO = Path(__file__).resolve().parents[1]


def write_clip(path: Path, bright: bool, rng: np.random.Generator) -> list[list[float]]:
    side = W // 5
    x0, y0 = int(rng.integers(0, W - side)), int(rng.integers(0, H - side))
    level = rng.uniform(40, 215)
    frames = np.clip(rng.normal(level, 40, (FRAMES, H, W, 3)), 0, 255)
    frames[:, y0 : y0 + side, x0 : x0 + side] = np.clip(
        rng.normal(235 if bright else 20, 10, (FRAMES, side, side, 3)), 0, 255
    )
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
         "-s", f"{W}x{H}", "-r", str(FPS), "-i", "pipe:", "-c:v", "libx264", "-qp", "0",
         "-pix_fmt", "yuv444p", f"file:{path}"],
        input=frames.astype(np.uint8).tobytes(), check=True,
    )  # fmt: skip
    box = [x0 / W, y0 / H, (x0 + side) / W, (y0 + side) / H]
    return [[i / FPS, *box] for i in range(0, FRAMES, 2)]


def make_data(folder: Path, clips: int, seed: int) -> tuple[Path, list[dict]]:
    rng = np.random.default_rng(seed)
    items = []
    for i in range(clips):
        answer = i % 2
        track = write_clip(folder / f"clip{i:03d}.mp4", answer == 0, rng)
        items.append(
            sample(
                f"c{i}",
                str(folder / f"clip{i:03d}.mp4"),
                False,
                "face",
                [(QUESTION, ANSWERS[answer])],
                track,
            )  # fmt: skip
        )
    split = clips * 3 // 4
    write_export(folder / "train.json", items[:split])
    return folder / "train.json", items[split:]


@torch.no_grad()
def evaluate(model, processor, held_out: list[dict], crops: bool) -> tuple[float, float]:
    """Held-out accuracy (right answer more likely than the wrong one) and answer loss."""
    model.eval()
    right, losses = 0, []
    for item in held_out:
        scores = []
        for answer in ANSWERS:
            candidate = dict(item, conversations=[item["conversations"][0],
                                                  {"from": "gpt", "value": answer}])  # fmt: skip
            record = record_from_item(candidate, "eval", Path("."), item["id"])
            data = OmniDataset([record], processor, face_crops=crops)
            batch = collate([data[0]], processor.pad_id)
            keys = ("input_ids", "attention_mask", "labels", "pixel_values",
                    "face_pixel_values", "gate_input_ids", "gate_attention_mask")  # fmt: skip
            out = model(**{k: batch[k] for k in keys if batch.get(k) is not None})
            scores.append(float(out.loss))
        truth = ANSWERS.index(item["conversations"][1]["value"])
        right += int(np.argmin(scores) == truth)
        losses.append(scores[truth])
    return right / len(held_out), float(np.mean(losses))


def run(train_file, held_out, crops: bool, steps: int, lr: float, seed: int, out: Path, tiny: str):
    cfg = load_train_config(
        REPO / "configs" / "train" / "tiny" / "stage1_face.yaml",
        [f"data.train=['{train_file}']", f"output_dir={out}", f"schedule.steps={steps}",
         "schedule.micro_batch_size=4", f"data.face_crops={str(crops).lower()}",
         "data.num_workers=0", "tensorboard=false", "log_every=1000", f"seed={seed}",
         f"optim.lr={lr}",
         f"model.tiny_dir={tiny}"],
    )  # fmt: skip
    result = train(cfg)
    from model.data.processor import OmniProcessor
    from model.train.loop import omni_config_for

    processor = OmniProcessor.from_config(omni_config_for(cfg))
    return (*evaluate(result.model, processor, held_out, crops), result.losses[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--tiny-dir", default="models/tiny/omni")
    args = parser.parse_args()
    rows = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            folder = Path(tmp) / f"seed{seed}"
            folder.mkdir()
            train_file, held_out = make_data(folder, args.clips, seed)
            for crops in (True, False):
                out = folder / ("crops" if crops else "full")
                rows[crops].append(
                    run(train_file, held_out, crops, args.steps, args.lr, seed, out, args.tiny_dir)
                )
    print(f"{'face branch input':<22} {'held-out acc':>12} {'answer loss':>12} {'train loss':>11}")
    summary = {}
    for crops, label in ((False, "full frames (release)"), (True, "face crops")):
        acc, loss, last = (float(np.mean([r[i] for r in rows[crops]])) for i in range(3))
        summary[crops] = (acc, loss)
        print(f"{label:<22} {acc:>12.3f} {loss:>12.4f} {last:>11.4f}")
    print(
        json.dumps({"clips": args.clips, "steps": args.steps, "seeds": args.seeds, "lr": args.lr})
    )
    print(
        f"RESULT bench=face_crops crops_accuracy={summary[True][0]:.3f} "
        f"full_accuracy={summary[False][0]:.3f} crops_answer_loss={summary[True][1]:.4f} "
        f"full_answer_loss={summary[False][1]:.4f} steps={args.steps} clips={args.clips}"
    )


if __name__ == "__main__":
    main()
