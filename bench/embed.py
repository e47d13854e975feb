"""Benchmark: captions per second of the default caption embedder (embed.model) on CPU.

Captions are synthetic but caption-shaped (15-25 words, built from people, actions, places),
embedded in batches of `embed.batch_size` exactly as the embed stage does.
"""

from __future__ import annotations

import argparse
import itertools
import time

from curation.embed import CaptionEmbedder
from stages.embed import EmbedConfig

PEOPLE = ["A young woman in a red coat", "An elderly man with a grey beard", "Two children in school uniforms",
          "A man in a dark suit", "A group of teenagers", "A woman with curly hair and glasses"]  # fmt: skip
ACTIONS = ["is walking slowly", "is laughing and talking", "is dancing energetically", "is reading a book",
           "is cooking dinner", "is playing the guitar", "is riding a bicycle"]  # fmt: skip
PLACES = ["along a busy city street at night", "in a small, warmly lit kitchen", "on a sunny beach",
          "in a crowded subway car", "inside a quiet library", "on a stage under bright lights"]  # fmt: skip
DETAILS = ["while the camera slowly pans to the left.", "as people pass by in the background.",
           "with a calm and happy expression.", "in a handheld, slightly shaky shot."]  # fmt: skip


def captions(n: int) -> list[str]:
    combos = itertools.cycle(itertools.product(PEOPLE, ACTIONS, PLACES, DETAILS))
    return [" ".join(next(combos)) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    cfg = EmbedConfig()
    embedder = CaptionEmbedder(cfg.model, "cpu", cfg.batch_size)
    texts = captions(args.n)
    embedder.embed(texts[:64])  # load and warm up outside the timing
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    wall = time.perf_counter() - started
    print(f"model {cfg.model}: {vectors.shape[0]} captions -> {vectors.shape[1]}-d in {wall:.2f} s")
    print(
        f"RESULT bench=embed captions={args.n} wall_s={wall:.3f} captions_per_s={args.n / wall:.1f}"
    )


if __name__ == "__main__":
    main()
