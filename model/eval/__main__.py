"""Evaluate a checkpoint on the paper's benchmarks with lmms-eval (`make eval`):

    python -m model.eval --checkpoint runs/sample/tiny/stage3_joint/final [--tasks dfew,mafw]
        [--data /data/benchmarks] [--run sample] [--fold 1] [--limit N]

Without --data the project's small labelled sets (model/eval/sets/) are scored; with it each
task reads its dataset's own layout under <data>/<task>/ (model/eval/layouts.py). `run_val`
scores the curated run's validation split (data_manifests/<run>/exports/val/) when there is
one. Any other task name is one of lmms-eval's own (mvbench, videomme, librispeech, ...),
passed through as it is. Writes runs/<run>/eval/<checkpoint>/: the documents, lmms-eval's
results and per-sample logs (lmms/), summary.json and summary.md (the table beside the
paper's numbers); a re-run answers the samples already answered from lmms-eval's response
cache (cache/), so an interrupted evaluation resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from model.eval.digest import checkpoint_digest
from model.eval.judge import judge, load_judge
from model.eval.layouts import LayoutError
from model.eval.plugin import MODEL_NAME
from model.eval.prepare import DATA_TASKS, PROJECT_TASKS, SETS_DIR, prepare
from model.eval.summary import latest_results, read_samples, summarize, table

log = logging.getLogger("model.eval")


def default_tasks(data: Path | None, run_dir: Path) -> list[str]:
    """Every project task with data: the given folder's (or the shipped sets'), and the run's
    validation split when it has one."""
    root = data if data is not None else SETS_DIR
    tasks = [t for t in DATA_TASKS if (root / t).is_dir()]
    if any((run_dir / "exports" / "val").glob("*.json")):
        tasks.append("run_val")
    return tasks


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _model_args(args: argparse.Namespace, out: Path, digest: str) -> str:
    # The checkpoint last: lmms-eval names its output folder after the end of this string.
    values = {
        "digest": digest,
        "errors_path": str((out / "sample_errors.jsonl").resolve()),
        "max_new_tokens": str(args.max_new_tokens),
        **({"device": args.device} if args.device else {}),
        "checkpoint": str(Path(args.checkpoint).resolve()),
    }
    for key, value in values.items():
        if "," in value or "=" in value:  # lmms-eval splits model_args on both
            raise ValueError(
                f"{key} {value!r} contains ',' or '=', which --model_args cannot carry"
            )
    return ",".join(f"{k}={v}" for k, v in values.items())


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m model.eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, help="a stage's or model.convert's folder")
    parser.add_argument("--tasks", help="comma-separated (default: every project task with data)")
    parser.add_argument("--data", type=Path, help="benchmarks in their own layouts, <data>/<task>/")
    parser.add_argument("--run", default="sample", help="run name: runs/<run>/eval/")
    parser.add_argument("--runs-root", type=Path, default=Path("runs"))
    parser.add_argument(
        "--run-dir", type=Path, help="the curated run (default data_manifests/<run>)"
    )
    parser.add_argument("--fold", type=int, default=1, help="DFEW/MAFW fold (1-5)")
    parser.add_argument("--limit", type=int, help="at most N samples per task (a smoke test)")
    parser.add_argument("--device", help="cuda, cuda:1, cpu (default: cuda when there is one)")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--out", type=Path, help="default runs/<run>/eval/<checkpoint>")
    parser.add_argument("--judge", type=Path, metavar="YAML",
                        help="a model backend (a stage's backend: fields) for DFEC's judged scores")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse(argv)
    checkpoint = Path(args.checkpoint)
    if not (checkpoint / "omni_config.json").is_file():
        print(f"error: {checkpoint} is not a checkpoint (no omni_config.json)", file=sys.stderr)
        return 2
    if not 1 <= args.fold <= 5:
        print(f"error: --fold {args.fold}: DFEW and MAFW have folds 1-5", file=sys.stderr)
        return 2
    run_dir = args.run_dir or Path("data_manifests") / args.run
    tasks = args.tasks.split(",") if args.tasks else default_tasks(args.data, run_dir)
    tasks = [t.strip() for t in tasks if t.strip()]
    if not tasks:
        print("error: no task to run (no data for any project task)", file=sys.stderr)
        return 2
    out = (
        args.out
        or args.runs_root / args.run / "eval" / f"{checkpoint.parent.name}-{checkpoint.name}"
    )
    ours = [t for t in tasks if t in PROJECT_TASKS]
    try:
        judge_config = load_judge(args.judge) if args.judge else None
        prepared = prepare(ours, out, args.data, run_dir, args.fold)
        digest = checkpoint_digest(checkpoint)
        model_args = _model_args(args, out, digest)
    except (LayoutError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    runnable = [t for t in tasks if t not in ours or prepared[t]["docs"]]
    if not runnable:
        print(
            "error: no task has a sample to evaluate (see the skipped rows above)", file=sys.stderr
        )
        return 2
    (out / "sample_errors.jsonl").unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "lmms_eval",
        "--model", MODEL_NAME, "--model_args", model_args,
        "--tasks", ",".join(runnable),
        "--output_path", str(out / "lmms"), "--log_samples",
        "--use_cache", str(out / "cache"),
        "--batch_size", "1", "--verbosity", "WARNING",
    ]  # fmt: skip
    if ours:
        command += ["--include_path", str(out / "tasks")]
    if args.limit:
        command += ["--limit", str(args.limit)]
    env = dict(os.environ)
    if set(runnable) <= set(PROJECT_TASKS):
        env["HF_DATASETS_OFFLINE"] = "1"  # local documents only: never wait on the network
    log.info("lmms-eval on %s: %s", ", ".join(runnable), " ".join(command))
    rc = subprocess.run(command, env=env, check=False).returncode
    if rc != 0:
        print(f"error: lmms-eval failed (exit {rc}); its messages are above", file=sys.stderr)
        return rc
    results = latest_results(out / "lmms")
    summary = summarize(results, prepared, out / "sample_errors.jsonl")
    summary |= {"checkpoint": str(checkpoint), "digest": digest,
                "data": str(args.data or SETS_DIR), "fold": args.fold}  # fmt: skip
    _write(out, summary)  # the scores are safe before the judge runs
    rc = 0
    if judge_config is not None and "dfec" in summary["tasks"]:
        captions = [s["cider"] for s in read_samples(results, "dfec")]
        try:
            judged = judge(
                judge_config, captions, out / "dfec_judge.jsonl", args.device or _device()
            )
        except Exception as exc:  # a judge that cannot start (no weights, server down)
            print(
                f"error: DFEC's judge failed, the table has no judged scores: {exc}",
                file=sys.stderr,
            )
            rc = 1
        else:
            summary["tasks"]["dfec"]["metrics"].update(judged)
            _write(out, summary)
    print(table(summary))
    print(f"written to {out}/ (summary.md, summary.json, per-sample logs in lmms/)")
    return rc


def _write(out: Path, summary: dict) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(f"# {summary['checkpoint']}\n\n{table(summary)}\n")


if __name__ == "__main__":
    sys.exit(main())
