"""A released HumanOmni checkpoint on DFEW fold 1 and MAFW fold 1, beside the paper's numbers.

    python bench/eval_release.py --release /models/HumanOmni-7B-Omni --data /benchmarks \\
        [--bert /models/bert-base-uncased] [--vision ...] [--audio ...] [--limit N]

`--device cpu` runs it without a GPU (a tiny release; how the script is checked).
Converts the release (`model.convert`, once; the towers from the paths given or the names its
config.json holds) and runs `make eval`'s evaluation on `<data>/dfew` and `<data>/mafw` in
their own layouts (docs/evaluation.md). Needs a GPU (a 7B model at bf16) and the data: where
either is missing it says which and exits 2 before any work. Prints the table and ends with a
RESULT line: UAR/WAR of each dataset and the samples per second of the whole evaluation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.eval.layouts import LayoutError  # noqa: E402
from model.eval.prepare import read_task  # noqa: E402


def missing(args: argparse.Namespace) -> list[str]:
    import torch

    problems = []
    if args.device != "cpu" and not torch.cuda.is_available():
        problems.append("no GPU (torch.cuda.is_available() is False): a 7B release needs one")
    if not (args.release / "config.json").is_file():
        problems.append(f"no HumanOmni release at {args.release} (no config.json)")
    for task in ("dfew", "mafw"):
        try:
            loaded = read_task(task, args.data / task, fold=1)
        except (LayoutError, OSError) as exc:
            problems.append(f"{task}: {exc}")
            continue
        if not loaded.docs:
            problems.append(f"{task}: no clip of fold 1 found under {args.data / task}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--release", type=Path, required=True, help="a HumanOmni release folder")
    parser.add_argument(
        "--data", type=Path, required=True, help="with dfew/ and mafw/ in their layouts"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/bench-eval"))
    parser.add_argument("--bert", default="google-bert/bert-base-uncased")
    parser.add_argument("--vision")
    parser.add_argument("--audio")
    parser.add_argument("--limit", type=int, help="at most N clips per dataset")
    parser.add_argument("--device", help="cpu runs without a GPU (slowly; a tiny model)")
    args = parser.parse_args(argv)
    problems = missing(args)
    if problems:
        for problem in problems:
            print(f"cannot run: {problem}", file=sys.stderr)
        return 2

    from model.convert import main as convert
    from model.eval.__main__ import main as evaluate

    checkpoint = args.out / args.release.name
    if not (checkpoint / "omni_config.json").is_file():
        towers = [f"--{k}={v}" for k in ("bert", "vision", "audio") if (v := getattr(args, k))]
        if convert([str(args.release), str(checkpoint), *towers]) != 0:
            return 1
    eval_args = ["--checkpoint", str(checkpoint), "--tasks", "dfew,mafw", "--data", str(args.data),
                 "--fold", "1", "--out", str(args.out / "eval"), "--max-new-tokens", "16"]  # fmt: skip
    if args.limit:
        eval_args += ["--limit", str(args.limit)]
    if args.device:
        eval_args += ["--device", args.device]
    if evaluate(eval_args) != 0:
        return 1
    summary = json.loads((args.out / "eval" / "summary.json").read_text())
    scores = {
        f"{task}_{metric}": summary["tasks"][task]["metrics"][metric]
        for task in ("dfew", "mafw")
        for metric in ("uar", "war", "invalid_rate")
    }
    paper = {
        f"paper_{t}_{m}": v
        for t in ("dfew", "mafw")
        for m, v in summary["tasks"][t]["paper"].items()
    }
    fields = {**scores, **paper, "samples_per_s": summary["samples_per_s"]}
    print(
        "RESULT bench=eval_release "
        + " ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items()
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
