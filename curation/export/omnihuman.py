"""`make export FORMAT=omnihuman`: OmniHuman-1's mixed-condition training data.

OmniHuman-1 trains one video generator on text, a reference image, audio and pose at once,
in three stages: (1) text and reference image, (2) plus audio, (3) plus pose. Two rules
shape the mix: a stronger-condition task may reuse the data of a weaker one (a clip without
lip-synced speech still trains text-and-image), and the stronger the condition, the lower
its ratio. So every kept clip file gets one record in `exports/omnihuman.jsonl` with the
conditions it can train:

- `text`: it has a caption (the consensus, else the brief caption);
- `audio`: `speech_s` ≥ min_speech_s, `lip_sync` ≥ min_lip_sync and the sound in step
  (|`lip_sync_offset_s`| ≤ max_offset_s): speech the visible mouth speaks;
- `pose`: `pose_visible` ≥ min_pose_visible;

with its framing, the signals behind the choice, and the reference frame for the appearance
condition (the sampled frame whose face box is largest times its score, else whose person box
is; its time and box). `exports/omnihuman_stages.json` holds the three stages' mixtures:
per task its share of the stage's samples, the conditions given and its pool of clips. Stage 2
gives `weaker_share` of its samples to the text task (rule 1: the audio stage reuses the
weaker data), stage 3 `pose_share` to the pose task and splits the rest between audio and
text the same way; with the paper's settings (0.5 and 0.5): text 1.0; audio 0.5 + text 0.5;
pose 0.5 + audio 0.25 + text 0.25. Clips of a virtual cut have no file and are left out (counted).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from curation.export.config import OmniHumanConfig
from curation.rundir import RunDir

CONDITIONS = ("text", "audio", "pose")  # weakest to strongest
FRAMINGS = ("close_up", "half_body", "full_body", "none")


def caption(clip: dict[str, Any]) -> str | None:
    return (clip.get("consensus") or clip.get("brief_caption") or "").strip() or None


def conditions(clip: dict[str, Any], cfg: OmniHumanConfig) -> list[str]:
    """The conditions this clip can train, weakest first."""
    out = ["text"] if caption(clip) else []
    sync, offset = clip.get("lip_sync"), clip.get("lip_sync_offset_s")
    if ((clip.get("speech_s") or 0.0) >= cfg.min_speech_s and sync is not None
            and sync >= cfg.min_lip_sync and abs(offset or 0.0) <= cfg.max_offset_s):  # fmt: skip
        out.append("audio")
    if (clip.get("pose_visible") or 0.0) >= cfg.min_pose_visible:
        out.append("pose")
    return out


def reference_frame(clip: dict[str, Any]) -> dict[str, Any] | None:
    """The sampled frame that shows the person best: largest face (area x score), else largest
    person box; None without boxes."""
    boxes = clip.get("boxes") or []
    for cls in ("face", "person"):
        found = [b for b in boxes if b["cls"] == cls]
        if found:
            b = max(found, key=lambda b: (b["nx2"] - b["nx1"]) * (b["ny2"] - b["ny1"]) * b["score"])
            box = [round(float(b[k]), 4) for k in ("nx1", "ny1", "nx2", "ny2")]
            return {"frame": b["frame"], "t_s": b["t_s"], "by": cls, "box": box}
    return None


def record(clip: dict[str, Any], cfg: OmniHumanConfig) -> dict[str, Any]:
    return {
        "id": clip["clip_id"], "video": clip["clip_path"],
        "duration_s": round(float(clip["end_s"]) - float(clip["start_s"]), 4),
        "width": clip.get("display_width"), "height": clip.get("display_height"),
        "fps": clip.get("fps"), "conditions": conditions(clip, cfg),
        "framing": clip.get("framing") or "none", "text": caption(clip),
        "speech_s": clip.get("speech_s"), "transcript": clip.get("transcript"),
        "lip_sync": clip.get("lip_sync"), "lip_sync_offset_s": clip.get("lip_sync_offset_s"),
        "pose_visible": clip.get("pose_visible"), "reference_frame": reference_frame(clip),
    }  # fmt: skip


def check_record(item: Any) -> list[str]:
    """What is wrong with one omnihuman.jsonl record (empty when well formed)."""
    if not isinstance(item, dict):
        return ["not an object"]
    problems = []
    if not isinstance(item.get("video"), str) or not item["video"]:
        problems.append("needs a video path")
    conds = item.get("conditions")
    if not isinstance(conds, list) or any(c not in CONDITIONS for c in conds):
        problems.append(f"conditions must be a list drawn from {list(CONDITIONS)}")
    elif conds != sorted(conds, key=CONDITIONS.index):
        problems.append("conditions must be in order, weakest first")
    if item.get("framing") not in FRAMINGS:
        problems.append(f"framing must be one of {list(FRAMINGS)}")
    if "audio" in (conds or []) and item.get("lip_sync") is None:
        problems.append("an audio clip needs its lip_sync")
    ref = item.get("reference_frame")
    if ref is not None and not all(0.0 <= v <= 1.0 for v in ref.get("box", [-1])):
        problems.append("reference_frame.box must be normalised")
    return problems


def stage_mixtures(pools: dict[str, int], cfg: OmniHumanConfig) -> list[dict[str, Any]]:
    """The three stages: tasks with their share of the stage's samples, the conditions each is
    given and its pool (clips that can train it)."""
    weak, pose = cfg.weaker_share, cfg.pose_share

    def task(name: str, share: float) -> dict[str, Any]:
        given = {"text": ["text", "reference_image"], "audio": ["text", "reference_image", "audio"],
                 "pose": ["text", "reference_image", "pose"]}[name]  # fmt: skip
        out = {"task": name, "share": round(share, 4), "given": given,
               "pool": f"clips with the {name} condition", "clips": pools[name]}  # fmt: skip
        if name == "pose":  # the audio condition too, where the clip has it
            out["with_audio"] = pools["pose+audio"]
        return out

    stages = [
        ("stage1_text_image", [task("text", 1.0)]),
        ("stage2_audio", [task("audio", 1 - weak), task("text", weak)]),
        ("stage3_pose", [task("pose", pose), task("audio", (1 - pose) * (1 - weak)),
                         task("text", (1 - pose) * weak)]),
    ]  # fmt: skip
    return [{"name": name, "tasks": tasks} for name, tasks in stages]


def write_omnihuman(run: RunDir, folder: str, cfg: OmniHumanConfig) -> dict[str, Any]:
    """exports/omnihuman.jsonl and exports/omnihuman_stages.json from the kept rows of
    `folder` (a run's last stage), streamed shard by shard; returns the yields."""
    pools: Counter[str] = Counter()
    by_framing: dict[str, Counter[str]] = {f: Counter() for f in FRAMINGS}
    clips = virtual = 0
    with run.storage.open_output("exports/omnihuman.jsonl") as fh:
        for unit in sorted(run.units(folder)):
            for clip in run.read_unit(folder, unit).to_pylist():
                if not clip["kept"]:
                    continue
                if not clip.get("clip_path"):
                    virtual += 1
                    continue
                item = record(clip, cfg)
                problems = check_record(item)
                if problems:
                    raise ValueError(f"omnihuman export: malformed record {item['id']}: {problems}")
                fh.write((json.dumps(item, ensure_ascii=False) + "\n").encode())
                clips += 1
                pools.update(item["conditions"])
                pools["pose+audio"] += {"pose", "audio"} <= set(item["conditions"])
                by_framing[item["framing"]].update(["clips", *item["conditions"]])
    pools_all = {c: pools[c] for c in CONDITIONS}
    stages = stage_mixtures({**pools_all, "pose+audio": pools["pose+audio"]}, cfg)
    summary = {"clips": clips, "conditions": pools_all,
               "framing": {f: {k: c[k] for k in ("clips", *CONDITIONS)} for f, c in by_framing.items()},
               "virtual_clips_left_out": virtual}  # fmt: skip
    blob = {"source": folder, "settings": cfg.model_dump(), "yield": summary, "stages": stages}
    run.storage.write_bytes("exports/omnihuman_stages.json", json.dumps(blob, indent=2).encode())
    return summary


def format_yield(summary: dict[str, Any]) -> str:
    head = f"{'framing':<10} {'clips':>6} " + " ".join(f"{c:>6}" for c in CONDITIONS)
    lines = [head, "-" * len(head)]
    for framing, c in summary["framing"].items():
        lines.append(f"{framing:<10} {c['clips']:>6} " + " ".join(f"{c[k]:>6}" for k in CONDITIONS))
    lines.append(f"{'all':<10} {summary['clips']:>6} "
                 + " ".join(f"{summary['conditions'][k]:>6}" for k in CONDITIONS))  # fmt: skip
    if summary["virtual_clips_left_out"]:
        lines.append(f"virtual clips left out (no file): {summary['virtual_clips_left_out']}")
    return "\n".join(lines)
