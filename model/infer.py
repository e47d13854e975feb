"""Ask the omni model about a clip:

    python -m model.infer --checkpoint runs/sample/stage3_joint/final --clip clip.mp4 \\
        --instruction "What emotion does the person show?" [--modal video_audio|video|audio]

Prints the answer and the three branch weights the gate gave the instruction. `--modal audio`
uses only the clip's sound (no dummy video), `video` only its frames. The same processor as in
training prepares frames, audio and the gate's text.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from model.build import TOWERS, build_model, init_missing
from model.config import BRANCHES, OmniConfig
from model.data.errors import SampleError
from model.data.processor import OmniProcessor
from model.omni import HumanOmniModel
from model.train.checkpoint import load_stage_parts, stage_parts
from model.weights import has_weights

MODALS = ("video_audio", "video", "audio")


def load_checkpoint(
    checkpoint: str | Path, device: str = "cpu", dtype: torch.dtype | None = None
) -> tuple[HumanOmniModel, OmniProcessor]:
    """The model a training stage (or `model.convert`) ended with: the parts it trained from its
    checkpoint, the parts it loaded from the earlier checkpoints, the pretrained towers it holds
    neither way from their sources. Parts are built without weights and filled from the files,
    in `dtype` (default bfloat16 on a GPU, float32 on a CPU)."""
    folder = Path(checkpoint)
    if not has_weights(folder):
        raise FileNotFoundError(f"{folder} is not a checkpoint (no weights)")
    dtype = dtype or (torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32)
    cfg = OmniConfig.load(folder / "omni_config.json")
    processor = OmniProcessor.from_config(cfg)
    parts = stage_parts(folder)
    model = build_model(
        cfg,
        pretrained=[t for t in TOWERS if t not in parts],
        empty=True,
        dtype=dtype,
        token_ids=processor.token_ids,
        vocab_size=processor.vocab_size,
    )
    load_stage_parts(model, folder, parts, dtype=dtype)
    untrained = init_missing(model)
    if untrained:
        print(f"note: {folder} has no weights for {untrained}: they start untrained")
    return model.to(device=device, dtype=dtype).eval(), processor


def ask(
    model: HumanOmniModel,
    processor: OmniProcessor,
    clip: str | None,
    instruction: str,
    modal: str = "video_audio",
    max_new_tokens: int = 128,
    face_track: list[list[float]] | None = None,
    waveform: np.ndarray | None = None,
    window: tuple[float, float] | None = None,
) -> tuple[str, dict[str, float] | None]:
    """The answer, and the branch weights (None without video). With a `face_track` (as the
    exports carry it) the face branch sees face crops, as under `data.face_crops`. The sound is
    the clip's own, or `waveform` (16 kHz mono samples) when given. `window` (start, end
    seconds) shows only the frames in it."""
    if modal not in MODALS:
        raise ValueError(f"modal must be one of {MODALS}")
    device = next(model.parameters()).device
    use_video, use_audio = modal != "audio", modal != "video"
    tags = ("<video>\n" if use_video else "") + ("<audio>\n" if use_audio else "")
    conversation = [{"from": "human", "value": tags + instruction}]
    ids = torch.tensor([processor.prompt_ids(conversation)], device=device)
    media = {}
    if use_video:
        gate = torch.tensor([processor.gate_ids(conversation)], device=device)
        if face_track:
            frames, faces = processor.video_and_faces(clip, face_track)
            media["face_pixel_values"] = faces.unsqueeze(0).to(device)
        else:
            frames = processor.video(clip, window)
        media |= {
            "pixel_values": frames.unsqueeze(0).to(device),
            "gate_input_ids": gate,
            "gate_attention_mask": torch.ones_like(gate),
        }
    if use_audio:
        features = processor.waveform_features(waveform) if waveform is not None else None
        features = processor.audio(clip) if features is None else features
        media["audio_features"] = features.unsqueeze(0).to(device)
    out, weights = model.generate(ids, torch.ones_like(ids), max_new_tokens, **media)
    answer = processor.decode(out[0], skip_special_tokens=True).strip()
    if weights is None:
        return answer, None
    return answer, {b: float(w) for b, w in zip(BRANCHES, weights[0], strict=True)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True, help="a stage's checkpoint folder")
    parser.add_argument(
        "--clip", required=True, help="a video (or, with --modal audio, audio) file"
    )
    parser.add_argument("--instruction", required=True)
    parser.add_argument("--modal", choices=MODALS, default="video_audio")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    args = parser.parse_args(argv)
    if not Path(args.clip).is_file():
        print(f"error: clip not found: {args.clip}", file=sys.stderr)
        return 2
    model, processor = load_checkpoint(args.checkpoint, args.device)
    try:
        answer, weights = ask(
            model, processor, args.clip, args.instruction, args.modal, args.max_new_tokens
        )
    except SampleError as exc:  # e.g. --modal video_audio on a clip without sound
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"answer": answer, "branch_weights": weights}))
        return 0
    print(f"answer: {answer}")
    if weights is None:
        print("branch weights: none (no video)")
    else:
        print("branch weights: " + ", ".join(f"{b} {w:.3f}" for b, w in weights.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
