"""Parameter counts of a named model size, built on the meta device (no memory, no download).

python -m model.summary --size 7b [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from model.build import build_model, parameter_counts
from model.sizes import SIZES


def summarize(size: str) -> dict[str, int]:
    cfg = SIZES[size]()
    with torch.device("meta"):
        model = build_model(cfg, pretrained=False)
    return parameter_counts(model)


def format_counts(size: str, counts: dict[str, int]) -> str:
    width = max(len(k) for k in counts)
    lines = [f"omni model '{size}': parameters per part"]
    for part, n in counts.items():
        lines.append(f"  {part:<{width}}  {n:>15,}  ({n / 1e6:,.2f}M)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="7b")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    args = parser.parse_args(argv)
    counts = summarize(args.size)
    print(json.dumps(counts, indent=2) if args.json else format_counts(args.size, counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
