"""Benchmark: timed visual events (stages/events.py) on the hand-labelled clips of
tests/assets/events.json (three of them made here: a photo zoomed in, a face coming up to the
camera, and out; a photo of a man with his arms spread, held still): precision and recall
under ViSpeak-Bench's timing rule (a detection of the right type whose end t satisfies
start - 1 <= t <= end + 2 of a label, each label matched once), seconds per clip on this
machine's CPU, and the share of frames the hand model looked at (those with a wrist above its
shoulder).

Baseline, on the same clips: the raw pose track's appearances and disappearances without the
person checks of curation/signals/framing.py (a pose anywhere is a person), which is what
reading BlazePose's output directly gives.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "tests" / "assets"


def score(found: list[dict], labels: list[dict]) -> tuple[int, int]:
    """(true positives, false positives) of `found` against `labels`, each label used once."""
    free = list(labels)
    tp = 0
    for e in found:
        hit = next((lab for lab in free if lab["type"] == e["type"]
                    and lab["span"][0] - 1 <= e["end_s"] <= lab["span"][1] + 2), None)  # fmt: skip
        if hit is not None:
            free.remove(hit)
            tp += 1
    return tp, len(found) - tp


def main() -> None:
    import sys

    sys.path.insert(0, str(REPO / "tests"))
    from helpers import still_clip, whole_file_clip, zoom_clip

    import curation.signals.framing as framing
    from curation.core.worker import Worker
    from curation.signals.events import detect_events
    from stages.events import EventsConfig, EventsStage

    labels = {
        k: v for k, v in json.loads((ASSETS / "events.json").read_text()).items() if k != "about"
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench-events-"))
    paths = {k: ASSETS / k for k in labels if not k.startswith("derived:")}
    paths["derived:zoom_in"] = zoom_clip(tmp / "zoom_in.mp4")
    paths["derived:zoom_out"] = zoom_clip(tmp / "zoom_out.mp4", zoom_in=False)
    paths["derived:warrior"] = still_clip(ASSETS / "stills" / "tfjs_pose_warrior.jpg",
                                          tmp / "warrior.mp4")  # fmt: skip
    stage = EventsStage(cfg=EventsConfig())
    stage.setup(Worker.local())
    results = {}
    for variant in ("pipeline", "baseline"):
        if variant == "baseline":  # any pose is a person: no joint count, spread or torso check
            framing.MIN_JOINTS, framing.MIN_SPREAD = 1, 0.0
        totals = {"tp": 0, "fp": 0, "labels": 0, "seconds": 0.0, "clip_s": 0.0, "frames": 0,
                  "looked": 0}  # fmt: skip
        rows = []
        for name, wanted in labels.items():
            clip = whole_file_clip(paths[name])
            started = time.perf_counter()
            frames, fps = stage.clip_frames(clip)
            found = detect_events(frames, fps, stage.rules)
            seconds = time.perf_counter() - started
            totals["frames"] += len(frames)
            totals["looked"] += sum(f.hands is not None for f in frames)
            tp, fp = score(found, wanted)
            totals.update(tp=totals["tp"] + tp, fp=totals["fp"] + fp,
                          labels=totals["labels"] + len(wanted), seconds=totals["seconds"] + seconds,
                          clip_s=totals["clip_s"] + clip["end_s"])  # fmt: skip
            rows.append((Path(name).name, clip["end_s"], len(wanted), len(found), tp, fp, seconds))
        results[variant] = (totals, rows)
    for variant, (_, rows) in results.items():
        print(f"\n{variant}")
        print(f"{'clip':<42} {'len s':>6} {'labels':>6} {'found':>6} {'tp':>4} {'fp':>4} {'s':>6}")
        for r in rows:
            print(f"{r[0]:<42} {r[1]:>6.1f} {r[2]:>6} {r[3]:>6} {r[4]:>4} {r[5]:>4} {r[6]:>6.2f}")
    shutil.rmtree(tmp, ignore_errors=True)
    (p, _), (b, _) = results["pipeline"], results["baseline"]

    def pr(t: dict) -> tuple[float, float]:
        found = t["tp"] + t["fp"]
        return (t["tp"] / found if found else 1.0), (t["tp"] / t["labels"] if t["labels"] else 1.0)

    (pp, rp), (pb, rb) = pr(p), pr(b)
    n = len(labels)
    print(
        f"\npipeline: precision {pp:.3f} recall {rp:.3f}; baseline: precision {pb:.3f} recall {rb:.3f}"
    )
    print(f"RESULT bench=events clips={n} labels={p['labels']} precision={pp:.3f} recall={rp:.3f} "
          f"baseline_precision={pb:.3f} baseline_recall={rb:.3f} s_per_clip={p['seconds'] / n:.2f} "
          f"s_per_clip_second={p['seconds'] / p['clip_s']:.3f} "
          f"hand_model_frames={p['looked'] / max(1, p['frames']):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
