"""Benchmark: does the temporal filter keep people moving and reject change no one makes?

Labelled clips (bench/temporal_clips.py, built with ffmpeg from the test media: a still, the
still under light noise, a talking head, a signer, the signer small in a 1080p wide shot, a
walking crowd, a pan, a shaking camera, a strobe, a fast montage, heavy noise) go through the
pipeline's scene pass and temporal filter with the default settings. The table prints, per
clip, the scores the filter judges (keyframes, flashes/s, jumps/s, flicker) and its verdict,
beside the verdict of the previous measure on the same decode (a keyframe when 5% of a 64-px
grey thumbnail changed by 20 levels; `static` under 2 keyframes, `chaotic` over 12 a second).
Last, each chaotic rule's default against the scores: the highest score of a clip to keep and
the lowest of the clips the rule is there to catch; a default sits in that gap.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from curation.core.ids import source_id
from stages.probe import ProbeConfig, ProbeStage
from stages.scenes import ScenesConfig, ScenesStage
from stages.temporal_filter import TemporalConfig, temporal_verdict

try:
    from temporal_clips import CLIPS, build
except ImportError:  # run as a module (python -m bench.temporal_quality)
    from bench.temporal_clips import CLIPS, build

# The measure before this one: whole-frame share on a 64-px thumbnail, 12 keyframes/s at most.
BASELINE_SCENES = {"keyframe_width": 64, "keyframe_grid": 1, "keyframe_cell_share": 0.05}
BASELINE_MAX_KEYFRAMES_PER_S = 12.0
# rule -> (column, the clips it is there to catch)
RULES = {
    "max_flash_rate": ("flash_rate", ("strobe",)),
    "max_jump_rate": ("jump_rate", ("fast_montage",)),
    "max_flicker": ("flicker", ("noise",)),
}


def clip_verdict(rows: list[dict[str, Any]], cfg: TemporalConfig) -> str:
    """One word for a clip: the verdict of its rows when they agree, else them all."""
    names = []
    for row in rows:
        name = row["reject_reason"] if not row["kept"] else temporal_verdict(row, cfg)[0]
        names.append(name)
    return names[0] if len(set(names)) == 1 else "+".join(sorted(set(names)))


def baseline_verdict(rows: list[dict[str, Any]]) -> str:
    names = []
    for row in rows:
        if not row["kept"]:
            names.append(row["reject_reason"])
        elif row["keyframes"] < 2:
            names.append("static")
        elif row["keyframe_rate"] > BASELINE_MAX_KEYFRAMES_PER_S:
            names.append("chaotic")
        else:
            names.append("ok")
    return names[0] if len(set(names)) == 1 else "+".join(sorted(set(names)))


def scene_rows(path: Path, cfg: ScenesConfig) -> list[dict[str, Any]]:
    source = ProbeStage(cfg=ProbeConfig()).probe_one({"source_id": source_id(str(path)),
                                                      "path": str(path)})  # fmt: skip
    return ScenesStage(cfg=cfg).split_source(source)


def worst(rows: list[dict[str, Any]], column: str) -> float:
    return max((r[column] for r in rows if r["kept"]), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, help="folder for the built clips (default: temp)")
    args = parser.parse_args()
    folder = args.clips or Path(tempfile.mkdtemp(prefix="temporal-clips-"))
    scenes_cfg, temporal_cfg = ScenesConfig(), TemporalConfig()
    baseline_cfg = ScenesConfig(**BASELINE_SCENES)

    print(f"{'clip':14} {'label':8} {'rows':>4} {'keys':>5} {'keys/s':>6} {'flash/s':>7} "
          f"{'jump/s':>6} {'flicker':>7}  {'verdict':10} {'baseline':10} {'baseline keys/s':>15}")  # fmt: skip
    scores: dict[str, list[dict[str, Any]]] = {}
    correct = baseline_correct = 0
    for name, (label, _what) in CLIPS.items():
        path = build(name, folder)
        rows = scene_rows(path, scenes_cfg)
        base_rows = scene_rows(path, baseline_cfg)
        scores[name] = rows
        verdict, base = clip_verdict(rows, temporal_cfg), baseline_verdict(base_rows)
        correct += verdict == label
        baseline_correct += base == label
        kept = [r for r in rows if r["kept"]] or rows
        keys = sum(r["keyframes"] for r in kept)
        seconds = sum(r["duration_s"] for r in kept)
        base_rate = max(r["keyframe_rate"] for r in base_rows)
        mark = "" if verdict == label else "  <- wrong"
        print(f"{name:14} {label:8} {len(rows):4d} {keys:5d} {keys / seconds:6.2f} "
              f"{worst(kept, 'flash_rate'):7.2f} {worst(kept, 'jump_rate'):6.2f} "
              f"{worst(kept, 'flicker'):7.3f}  {verdict:10} {base:10} {base_rate:15.2f}{mark}")  # fmt: skip

    print("\nchaotic rules: the default sits between the clips to keep and those to catch")
    print(f"{'rule':16} {'default':>8} {'highest kept':>13} {'lowest caught':>14}  caught by it")
    gaps = []
    for setting, (column, targets) in RULES.items():
        keep = max(worst(scores[n], column) for n, (lab, _) in CLIPS.items() if lab == "ok")
        catch = min(worst(scores[n], column) for n in targets)
        default = getattr(temporal_cfg, setting)
        gaps.append(f"{column}={keep:.3g}..{catch:.3g}")
        print(f"{setting:16} {default:8.3g} {keep:13.3g} {catch:14.3g}  {', '.join(targets)}")
    static_keys = max(sum(r["keyframes"] for r in scores[n]) for n, (lab, _) in CLIPS.items()
                      if lab == "static")  # fmt: skip
    least_ok = min(sum(r["keyframes"] for r in scores[n]) for n, (lab, _) in CLIPS.items()
                   if lab == "ok")  # fmt: skip
    print(f"min_keyframes {temporal_cfg.min_keyframes}: the stills make at most {static_keys} "
          f"keyframe(s), the clips to keep at least {least_ok}")  # fmt: skip
    print(
        f"RESULT bench=temporal_quality clips={len(CLIPS)} correct={correct} "
        f"baseline_correct={baseline_correct} {' '.join(gaps)} "
        f"keyframes_static_max={static_keys} keyframes_ok_min={least_ok}"
    )


if __name__ == "__main__":
    main()
