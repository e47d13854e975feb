"""Rebuild videos/derived_talking_obama_910x1136.mp4 (the Obama photo speaking a sentence)
and derived_other_speech.m4a (another voice saying another sentence, for lip-sync tests).

No public video in tests/assets has a person speaking on camera with sound at 480 lines or
more, so this one is made: espeak-ng says SENTENCE, and in every frame the photo's lower face
is stretched down (mouth open) by the speech's loudness in that frame, so mouth and voice
move together as in real speech. A slow zoom keeps the shot from being a still. The file is
committed; this script documents how it was made (it needs espeak-ng and ffmpeg):

    .venv/bin/python tests/assets/derive_talking_head.py
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
PHOTO = HERE / "stills" / "face_recognition_obama.jpg"
OUT = HERE / "videos" / "derived_talking_obama_910x1136.mp4"
OTHER = HERE / "derived_other_speech.m4a"
OTHER_SENTENCE = "My grandmother keeps bees in the garden behind the old stone house on the hill."
SENTENCE = "Good morning. The weather is clear and warm today, so we will walk to the market."
FPS = 25
LEAD_S = 0.6  # silence before and after the sentence
# Mouth line, chin and mouth centre in the photo (MediaPipe face mesh points 13, 152, 13).
MOUTH_Y, CHIN_Y, MOUTH_X, FACE_W = 318.0, 419.0, 497.0, 250.0
CLOSED, OPEN = -12.0, 30.0  # lower-face displacement, pixels, at silence and at full voice


def speak(text: str, wav: Path, voice: str = "en-us") -> None:
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as fh:
        rate = fh.getframerate()
        data = np.frombuffer(fh.readframes(fh.getnframes()), np.int16).astype(np.float32)
    return data / 32768.0, rate


def openness(samples: np.ndarray, rate: int, frames: int) -> np.ndarray:
    """0..1 per video frame: the speech's loudness (dB, 40 dB range), lightly smoothed."""
    hop = rate / FPS
    level = np.zeros(frames)
    for i in range(frames):
        chunk = samples[int(i * hop) : int((i + 1) * hop)]
        rms = float(np.sqrt(np.mean(chunk**2))) if chunk.size else 0.0
        level[i] = np.clip((20 * np.log10(rms + 1e-6) + 40) / 40, 0, 1)
    return np.convolve(level, [0.25, 0.5, 0.25], mode="same")


def render(photo: np.ndarray, amount: float, zoom: float) -> np.ndarray:
    h, w = photo.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = CLOSED + (OPEN - CLOSED) * amount
    ramp = np.clip((yy - MOUTH_Y) / 30.0, 0, 1) * np.clip(1 - (yy - CHIN_Y) / 90.0, 0, 1)
    shift = d * ramp * np.exp(-(((xx - MOUTH_X) / (FACE_W / 2.2)) ** 2))
    frame = cv2.remap(photo, xx, yy - shift, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, zoom)
    return cv2.warpAffine(frame, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def main() -> None:
    photo = cv2.imread(str(PHOTO))[:1136, :910]
    with tempfile.TemporaryDirectory() as tmp:
        speech = Path(tmp) / "speech.wav"
        speak(SENTENCE, speech)
        samples, rate = read_wav(speech)
        pad = np.zeros(int(LEAD_S * rate), np.float32)
        samples = np.concatenate([pad, samples, pad])
        frames = int(len(samples) / rate * FPS)
        amounts = openness(samples, rate, frames)
        audio = Path(tmp) / "audio.wav"
        with wave.open(str(audio), "wb") as fh:
            fh.setnchannels(1)
            fh.setsampwidth(2)
            fh.setframerate(rate)
            fh.writeframes((samples * 32767).astype(np.int16).tobytes())
        h, w = photo.shape[:2]
        encode = subprocess.Popen(
            ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
             "-s", f"{w}x{h}", "-r", str(FPS), "-i", "-", "-i", str(audio),
             "-c:v", "libx264", "-preset", "slow", "-crf", "26", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-b:a", "64k", "-ar", "48000", "-shortest",
             "-movflags", "+faststart", str(OUT)],
            stdin=subprocess.PIPE,
        )  # fmt: skip
        assert encode.stdin is not None
        for i, amount in enumerate(amounts):
            zoom = 1.0 + 0.04 * i / max(1, frames - 1)
            encode.stdin.write(render(photo, float(amount), zoom).tobytes())
        encode.stdin.close()
        if encode.wait() != 0:
            raise SystemExit("ffmpeg failed")
        other = Path(tmp) / "other.wav"
        speak(OTHER_SENTENCE, other, voice="en-us+f3")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(other), "-af", f"adelay={int(LEAD_S * 1000)}",
                        "-c:a", "aac", "-b:a", "48k", "-ar", "48000", str(OTHER)], check=True)  # fmt: skip
    print(f"wrote {OUT} ({frames} frames, {len(samples) / rate:.2f} s)")


if __name__ == "__main__":
    main()
