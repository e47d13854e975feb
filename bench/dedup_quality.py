"""Benchmark: which cosine threshold makes semantic dedup merge paraphrases and keep scenes apart?

The labelled set (tests/assets/captions/paraphrases.json) is 46 scenes, each described four
ways (276 duplicate pairs), written in groups that share a setting, a subject, an action or a
camera view, so that different scenes worded alike are the hard negatives (16,560 pairs). Every
pair is scored with the embedder (`--embedder`, default the pipeline's), and precision and
recall of "similarity >= threshold means duplicate" are printed by threshold beside the score
distributions of both kinds of pair and the hardest cases. The rule for the default: the
threshold with the best recall at precision >= 0.95 (on a 0.01 grid) among those that merge no
two different scenes sharing a setting (a kitchen, a park, a classroom...). Last, the whole set
is de-duplicated as the pipeline does it (greedy groups around the best clip) at the default:
how many scenes end as one clip, and how many clips were merged into another scene's.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from curation.dedup.config import DedupConfig
from curation.dedup.groups import dedup_captions
from curation.embed import CaptionEmbedder

LABELLED = Path(__file__).resolve().parents[1] / "tests/assets/captions/paraphrases.json"
MIN_PRECISION = 0.95


SETTINGS = {"kitchen", "park", "beach", "office", "street", "gym", "stage", "living-room",
            "classroom", "car", "snow", "field", "cafe", "garden"}  # fmt: skip


def labelled_pairs(
    path: Path = LABELLED,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Captions, their scene, every pair (i, j), whether it is a duplicate (same scene), and
    whether it is two different scenes that share a setting."""
    scenes = json.loads(path.read_text())["scenes"]
    captions = [c for s in scenes for c in s["captions"]]
    scene = np.repeat(np.arange(len(scenes)), [len(s["captions"]) for s in scenes])
    pairs = np.array(list(itertools.combinations(range(len(captions)), 2)))
    duplicate = scene[pairs[:, 0]] == scene[pairs[:, 1]]
    settings = [set(s["shares"]) & SETTINGS for s in scenes]
    shared = np.array([bool(settings[scene[i]] & settings[scene[j]]) for i, j in pairs])
    return captions, scene, pairs, duplicate, shared & ~duplicate


def curve(scores: np.ndarray, duplicate: np.ndarray, thresholds: np.ndarray) -> list[tuple]:
    rows = []
    for t in thresholds:
        said = scores >= t
        tp, fp = int((said & duplicate).sum()), int((said & ~duplicate).sum())
        rows.append((float(t), tp / max(1, tp + fp), tp / int(duplicate.sum()), fp))
    return rows


def choose(rows: list[tuple], floor: float = -1.0) -> tuple:
    """The row with the best recall among those with precision >= MIN_PRECISION and a
    threshold above `floor` (the highest score of two scenes sharing a setting)."""
    good = [r for r in rows if r[1] >= MIN_PRECISION and r[0] > floor]
    return max(good, key=lambda r: (r[2], r[1], r[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default=DedupConfig().embedder)
    args = parser.parse_args()
    captions, scene, pairs, duplicate, same_setting = labelled_pairs()
    embedder = CaptionEmbedder(args.embedder, "cpu")
    emb = embedder.embed(captions)
    scores = np.einsum("ij,ij->i", emb[pairs[:, 0]], emb[pairs[:, 1]])
    rows = curve(scores, duplicate, np.round(np.arange(0.40, 0.96, 0.01), 2))
    unconstrained = choose(rows)
    setting_max = float(scores[same_setting].max())
    best = choose(rows, setting_max)
    default = DedupConfig().threshold

    print(f"{len(captions)} captions of {len(captions) // 4} scenes, embedder {args.embedder}")
    print(
        f"{int(duplicate.sum())} duplicate pairs, {int((~duplicate).sum())} different-scene pairs\n"
    )
    q = [0, 5, 25, 50, 75, 95, 100]
    print("cosine similarity  " + "".join(f"{'p' + str(p):>8}" for p in q))
    for label, mask in (("duplicates", duplicate), ("different scenes", ~duplicate)):
        print(f"{label:<19}" + "".join(f"{v:>8.3f}" for v in np.percentile(scores[mask], q)))
    print(f"\n{'threshold':>9} {'precision':>10} {'recall':>8} {'false merges':>13}")
    for t, p, r, fp in rows:
        if round(t * 100) % 2 == 0 or t in (best[0], unconstrained[0], default):
            mark = "  <- best recall at precision >= 0.95" if t == unconstrained[0] else ""
            mark += "  <- ... merging no two scenes of one setting" if t == best[0] else ""
            mark += "  (default)" if abs(t - default) < 1e-9 else ""
            print(f"{t:>9.2f} {p:>10.3f} {r:>8.3f} {fp:>13d}{mark}")
    order = np.argsort(-scores)
    print("\nhardest different scenes (highest scores):")
    for k in [k for k in order if not duplicate[k]][:5]:
        print(f"  {scores[k]:.3f}  {captions[pairs[k, 0]]!r} / {captions[pairs[k, 1]]!r}")
    print("hardest duplicates (lowest scores):")
    for k in [k for k in order[::-1] if duplicate[k]][:5]:
        print(f"  {scores[k]:.3f}  {captions[pairs[k, 0]]!r} / {captions[pairs[k, 1]]!r}")
    print(f"highest score of two different scenes sharing a setting: {setting_max:.3f}")
    at = next(r for r in rows if abs(r[0] - default) < 1e-9)
    table = pa.table(
        {"clip_id": [f"{i:03d}" for i in range(len(captions))], "brief_caption": captions}
    )
    out = dedup_captions(table, embedder, default).to_pylist()
    leader = {r["clip_id"]: r["duplicate_of"] or r["clip_id"] for r in out}
    groups = [
        {leader[f"{i:03d}"] for i in np.flatnonzero(scene == k)} for k in range(scene.max() + 1)
    ]
    one = sum(len(g) == 1 for g in groups)
    crossed = sum(scene[int(r["clip_id"])] != scene[int(r["duplicate_of"])] for r in out
                  if r["duplicate_of"])  # fmt: skip
    print(
        f"\nthe whole set de-duplicated at the default {default:.2f}: {one} of {len(groups)} "
        f"scenes end as one clip, {sum(not r['kept'] for r in out)} clips dropped, "
        f"{crossed} of them for another scene's clip"
    )
    print(
        f"RESULT bench=dedup_quality pairs={len(pairs)} duplicates={int(duplicate.sum())} "
        f"best_threshold={best[0]:.2f} best_precision={best[1]:.4f} best_recall={best[2]:.4f} "
        f"default_threshold={default:.2f} default_precision={at[1]:.4f} default_recall={at[2]:.4f} "
        f"scenes_one_clip={one} scenes={len(groups)} cross_scene_merges={crossed}"
    )


if __name__ == "__main__":
    main()
