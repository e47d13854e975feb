"""Benchmark: seconds per clip of each signal (stages/signals.py) on this machine's CPU, and
what gating Whisper on the VAD saves against transcribing every clip whole.

Clips (built with ffmpeg from the test media, in a temporary folder): the talking head (7.2 s,
910x1136, speech), the same frames dubbed with another voice, its audio a second late, the
same with silence, four talking heads in a row (28.8 s, near the 30 s clip limit), a signer
without audio (3.6 s, 640x480) and two men walking to a film score (9.6 s, music).

Per clip the stage's own code runs (the default config: Silero VAD, Whisper tiny.en, landmark
lip sync at up to 25 fps on 640-px frames, BlazePose on 8 frames): `decode` is reading the
sound and the sampled frames, the others the models (lip sync includes decoding its frames).
Baseline, on the same clips: Whisper tiny.en on every clip's whole audio without a VAD, as a
pipeline without the gate would run it; it writes text for clips without speech.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO / "tests" / "assets" / "videos"
TALKING = VIDEOS / "derived_talking_obama_910x1136.mp4"
SIGNALS = ("decode", "vad", "asr", "lip_sync", "pose")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def build_clips(folder: Path) -> dict[str, Path]:
    """The benchmark's clips: name -> file."""
    clips = {"talking": TALKING, "signer_mute": VIDEOS / "intel_asl_book.mkv",
             "walkers_music": VIDEOS / "moviepy_chaplin.mp4"}  # fmt: skip
    remux = ["-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac"]
    other = REPO / "tests" / "assets" / "derived_other_speech.m4a"
    clips["dubbed"] = folder / "dubbed.mp4"
    ffmpeg("-i", str(TALKING), "-i", str(other), *remux, str(clips["dubbed"]))
    clips["late_1s"] = folder / "late.mp4"
    ffmpeg("-i", str(TALKING), "-itsoffset", "1", "-i", str(TALKING), *remux, str(clips["late_1s"]))
    clips["silent"] = folder / "silent.mp4"
    ffmpeg("-i", str(TALKING), "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", *remux,
           "-shortest", str(clips["silent"]))  # fmt: skip
    listing = folder / "four.txt"
    listing.write_text("".join(f"file '{TALKING}'\n" for _ in range(4)))
    clips["talking_x4"] = folder / "talking_x4.mp4"
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(clips["talking_x4"]))
    return clips


def clip_row(path: Path) -> dict:
    from curation.media.ffmpeg import parse_probe, run_ffprobe

    info = parse_probe(run_ffprobe(str(path), 60))
    assert info is not None and info.duration_s
    return {"clip_id": path.stem, "path": str(path), "start_s": 0.0, "end_s": info.duration_s,
            "has_audio": info.has_audio, "display_width": info.display_width,
            "display_height": info.display_height, "fps": info.fps,
            "video_start_s": info.video_start_s}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs per clip; medians reported")
    args = parser.parse_args()

    import torch

    from curation.core.worker import Worker
    from curation.media.audio import RATE, clip_audio
    from curation.signals.asr import FasterWhisperAsr
    from stages.signals import SignalsConfig, SignalsStage

    torch.set_num_threads(2)
    stage = SignalsStage(cfg=SignalsConfig())
    started = time.perf_counter()
    stage.setup(Worker.local())
    setup_s = time.perf_counter() - started
    whisper = FasterWhisperAsr(SignalsConfig().asr)  # the same model, used without the VAD
    whisper.setup("cpu")

    rows, per_signal = [], {s: [] for s in SIGNALS}
    naive_s, naive_false, ours_false = [], 0, 0
    with tempfile.TemporaryDirectory(prefix="bench-signals-") as tmp:
        for name, path in build_clips(Path(tmp)).items():
            clip = clip_row(path)
            runs, out = [], {}
            for _ in range(args.repeat):
                seconds: Counter = Counter()
                t0 = time.perf_counter()
                read = stage._read(clip)
                assert not isinstance(read, str), read
                seconds["decode"] += time.perf_counter() - t0
                out = stage.measure(clip, *read, seconds=seconds)
                runs.append(seconds)
            med = {s: statistics.median(r[s] for r in runs) for s in SIGNALS}
            for s in SIGNALS:
                per_signal[s].append(med[s])
            audio = clip_audio(clip)
            t0 = time.perf_counter()
            whole = (
                whisper.transcribe(audio, RATE, [(0.0, len(audio) / RATE)])
                if clip["has_audio"]
                else None
            )
            naive_s.append(time.perf_counter() - t0)
            no_speech = out["speech_s"] == 0 or name in ("silent", "walkers_music")
            if no_speech and whole is not None and whole.text.strip():
                naive_false += 1
            if no_speech and out["transcript"]:
                ours_false += 1
            rows.append((name, clip["end_s"], med, out, whole.text.strip() if whole else None))

    print(f"model setup (once per worker): {setup_s:.2f} s\n")
    head = f"{'clip':<14} {'len s':>6} " + " ".join(f"{s:>9}" for s in SIGNALS)
    head += f" {'total':>7}  speech_s  lip_sync  offset  framing    transcript / naive whole-clip Whisper"
    print(head)
    print("-" * len(head))
    for name, length, med, out, whole in rows:
        sync = "-" if out["lip_sync"] is None else f"{out['lip_sync']:.2f}"
        offset = "-" if out["lip_sync_offset_s"] is None else f"{out['lip_sync_offset_s']:+.2f}"
        text = (out["transcript"] or "(none)")[:38]
        print(f"{name:<14} {length:>6.1f} " + " ".join(f"{med[s]:>9.2f}" for s in SIGNALS)
              + f" {sum(med.values()):>7.2f}  {out['speech_s']:>8.2f}  {sync:>8}  {offset:>6}  "
              f"{out['framing']:<9}  {text} / {(whole or '(no audio)')[:30]}")  # fmt: skip
    n = len(rows)
    mean = {s: sum(v) / n for s, v in per_signal.items()}
    total = sum(mean.values())
    length = sum(r[1] for r in rows)
    print("\nmean seconds per clip: " + ", ".join(f"{s} {v:.2f}" for s, v in mean.items())
          + f"; all {total:.2f} ({total / (length / n):.2f} s per second of clip)")  # fmt: skip
    print(
        f"baseline, Whisper on every whole clip: {sum(naive_s) / n:.2f} s per clip, "
        f"text on {naive_false} clip(s) without speech; gated by the VAD: "
        f"{mean['asr']:.2f} s per clip, text on {ours_false}"
    )
    by = {r[0]: r[3] for r in rows}
    print(
        "RESULT bench=signals "
        + " ".join(f"{s}_s_per_clip={v:.3f}" for s, v in mean.items())
        + f" total_s_per_clip={total:.3f} clip_s_mean={length / n:.2f}"
        f" naive_asr_s_per_clip={sum(naive_s) / n:.3f} naive_false_transcripts={naive_false}"
        f" false_transcripts={ours_false} lip_sync_own={by['talking']['lip_sync']:.3f}"
        f" lip_sync_dubbed={by['dubbed']['lip_sync']:.3f}"
        f" late_offset_s={by['late_1s']['lip_sync_offset_s']:.2f}"
    )


if __name__ == "__main__":
    main()
