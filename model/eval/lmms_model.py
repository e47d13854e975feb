"""The omni model as an lmms-eval model, `humanomni_curate` (registered through the package's
`lmms_eval.models` entry point, so lmms-eval's own CLI finds it):

    python -m lmms_eval --model humanomni_curate --model_args checkpoint=runs/x/stage3_joint/final \\
        --tasks dfew --include_path model/eval/tasks

It answers generation requests one sample at a time with the same processor as training and
`model.infer`: the request's video is the clip, its sound the clip's own (or an audio item the
task gives, e.g. LibriSpeech's arrays), and its text the instruction, which also feeds the gate.
A task may name the inputs with `modal` in its `generation_kwargs` (`video_audio`, `video`,
`audio`); without it a video is read with its sound when it has any. A sample that cannot be
read (a missing or undecodable file, an image) is answered with an empty string, so it counts
wrong, and listed with its reason in `errors_path` when given; it never ends the run.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from loguru import logger
from tqdm import tqdm

from model.data.audio import SAMPLE_RATE, load_audio
from model.data.errors import SampleError
from model.eval.digest import checkpoint_digest
from model.infer import MODALS, ask, load_checkpoint

_NO_SOUND = {"no_audio_stream", "empty_audio"}


def _resample(array: np.ndarray, rate: int) -> np.ndarray:
    """Mono float samples at 16 kHz (linear interpolation; tasks' audio is mostly 16 kHz)."""
    wave = np.asarray(array, dtype=np.float32)
    wave = wave.mean(axis=-1) if wave.ndim > 1 else wave
    if rate == SAMPLE_RATE or len(wave) == 0:
        return wave
    n = round(len(wave) * SAMPLE_RATE / rate)
    return np.interp(np.linspace(0, len(wave) - 1, n), np.arange(len(wave)), wave).astype(
        np.float32
    )


def _waveform(item: dict[str, Any]) -> np.ndarray:
    """An audio item as tasks give it: decoded (`array`, `sampling_rate`) or a file (`bytes` or
    `path`, as `datasets.Audio(decode=False)` leaves it)."""
    if "array" in item:
        return _resample(item["array"], int(item.get("sampling_rate", SAMPLE_RATE)))
    if item.get("bytes"):
        with tempfile.NamedTemporaryFile(suffix=Path(item.get("path") or "a.wav").suffix) as f:
            f.write(item["bytes"])
            f.flush()
            return load_audio(f.name, SAMPLE_RATE)
    if item.get("path"):
        return load_audio(item["path"], SAMPLE_RATE)
    raise SampleError("audio_unreadable", "an audio item with neither samples nor a file")


class HumanOmniLmms(lmms):
    """`checkpoint`: a training stage's folder or a converted release (`model.convert`).
    `digest`: the checkpoint's digest (`model.eval.digest`), which `make eval` passes so that
    lmms-eval's response cache never serves answers of an earlier model at the same path; a
    mismatch is an error. `max_new_tokens` caps tasks that set none."""

    is_simple = True

    def __init__(
        self,
        checkpoint: str,
        device: str | None = None,
        dtype: str | None = None,
        max_new_tokens: int = 128,
        digest: str | None = None,
        errors_path: str | None = None,
        batch_size: int | str = 1,
        **_: Any,
    ) -> None:
        super().__init__()
        if digest and digest != checkpoint_digest(checkpoint):
            raise ValueError(
                f"{checkpoint} changed since its digest {digest} was taken; re-run make eval"
            )
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.processor = load_checkpoint(
            checkpoint, device, getattr(torch, dtype) if dtype else None
        )
        self.max_new_tokens = int(max_new_tokens)
        self.errors_path = Path(errors_path) if errors_path else None

    def _answer(self, context: str, visuals: list[Any], gen_kwargs: dict, doc: dict) -> str:
        # A video is a path, or {"video": path, "video_start": s, "video_end": t} for the part
        # of it a streaming benchmark has shown so far; a sound is a dict of samples or a file.
        videos = [
            v
            for v in visuals
            if isinstance(v, str | Path) or (isinstance(v, dict) and "video" in v)
        ]
        sounds = [v for v in visuals if isinstance(v, dict) and "video" not in v]
        other = [type(v).__name__ for v in visuals if not isinstance(v, str | Path | dict)]
        if other or len(videos) > 1 or len(sounds) > 1:
            raise SampleError(
                "unsupported_input",
                f"one video and/or one sound per sample, not {other or visuals}",
            )
        video = videos[0] if videos else None
        clip = str(video["video"] if isinstance(video, dict) else video) if video else None
        window = (
            (float(video.get("video_start") or 0.0), float(video["video_end"]))
            if isinstance(video, dict) and video.get("video_end") is not None
            else None
        )
        waveform = _waveform(sounds[0]) if sounds else None
        modal = (
            gen_kwargs.get("modal")
            or doc.get("modal")
            or ("video_audio" if clip else "audio" if waveform is not None else None)
        )
        if modal not in MODALS:
            raise SampleError("unsupported_input", f"no video or sound, or modal {modal!r}")
        max_new = int(gen_kwargs.get("max_new_tokens") or self.max_new_tokens)
        track = doc.get("face_track") or None
        try:
            answer, _ = ask(
                self.model, self.processor, clip, context, modal, max_new, track, waveform, window
            )
        except SampleError as exc:
            # A video without sound, asked with its sound by default: its pictures alone.
            if exc.reason not in _NO_SOUND or modal != "video_audio" or waveform is not None:
                raise
            answer, _ = ask(
                self.model, self.processor, clip, context, "video", max_new, track, window=window
            )
        return answer

    def generate_until(self, requests: list[Instance]) -> list[str]:
        answers = []
        for request in tqdm(requests, desc="humanomni_curate", disable=self.rank != 0):
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            try:
                visuals = doc_to_visual(doc) or []
                visuals = visuals if isinstance(visuals, list) else [visuals]
                answer = self._answer(context, visuals, dict(gen_kwargs or {}), doc)
            except SampleError as exc:
                logger.warning(f"{task} sample {doc_id}: {exc}")
                self._record_error(task, doc_id, exc)
                answer = ""
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), answer)
            answers.append(answer)
        return answers

    def _record_error(self, task: str, doc_id: int, exc: SampleError) -> None:
        if self.errors_path is None:
            return
        self.errors_path.parent.mkdir(parents=True, exist_ok=True)
        row = {"task": task, "doc_id": doc_id, "reason": exc.reason, "detail": exc.detail}
        with self.errors_path.open("a") as out:
            out.write(json.dumps(row) + "\n")

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        return self.generate_until(requests)

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError(
            "humanomni_curate answers generation tasks only (output_type: generate_until)"
        )
