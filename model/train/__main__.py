"""Train one or more stages in order:

    python -m model.train configs/train/stage1_face.yaml [more.yaml ...] [--run RUN]
        [--set optim.lr=1e-4 ...] [--no-resume]

RUN is the curation run the stages train on (`{run}` in their paths: data_manifests/<run>/...);
their outputs go to runs/<run>/<stage>/ unless a config says otherwise. A stage whose output
folder has checkpoints of the same config and data resumes from the newest one, and one that
finished is skipped; checkpoints of another config or other data stop the command before any
work (--no-resume moves them aside and trains from step 0).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from curation.core.config import ConfigError
from model.train.checkpoint import latest_checkpoint, read_trainer_state
from model.train.config import TrainConfig, load_train_config
from model.train.fingerprint import CheckpointMismatch, check_resumable
from model.weights import has_weights


def missing_inputs(configs: list[TrainConfig]) -> list[str]:
    """Data files and earlier checkpoints the stages need, checked before the first one starts;
    a checkpoint an earlier stage of this same command will write counts as present."""
    problems, coming = [], set()
    for cfg in configs:
        for path in cfg.data.train:
            if not Path(path).exists():
                problems.append(f"{cfg.name}: data.train {path} not found (run {cfg.run!r})")
        for path in cfg.data.val:
            if not Path(path).exists():
                problems.append(f"{cfg.name}: data.val {path} not found (run {cfg.run!r}; "
                                "`make instructions` writes exports/val/)")  # fmt: skip
        needed = [init.checkpoint for init in cfg.init_from]
        needed += [cfg.model.base] if cfg.model.base is not None else []
        for checkpoint in needed:
            folder = Path(checkpoint)
            if not has_weights(folder) and folder.resolve() not in coming:
                problems.append(
                    f"{cfg.name}: checkpoint {folder} not found (train its stage first)"
                )
        coming.add((cfg.output_path() / "final").resolve())
    return problems


def plan(configs: list[TrainConfig], resume: bool) -> list[TrainConfig]:
    """The stages to run: finished ones (same config and data) are left out; checkpoints of
    another config raise CheckpointMismatch (with --no-resume they are moved aside)."""
    todo = []
    for cfg in configs:
        done = latest_checkpoint(cfg.output_path())
        if done is not None and not resume:
            aside = cfg.output_path() / "checkpoints.replaced"
            shutil.rmtree(aside, ignore_errors=True)
            (cfg.output_path() / "checkpoints").rename(aside)
            (cfg.output_path() / "final").unlink(missing_ok=True)
            print(f"{cfg.name}: earlier checkpoints moved to {aside}")
            done = None
        if done is not None:
            state = read_trainer_state(done)
            check_resumable(state, cfg, done)
            if state["step"] >= state["total_steps"]:
                print(f"{cfg.name}: already finished ({done}); --no-resume to train it again")
                continue
        todo.append(cfg)
    return todo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("configs", nargs="+", help="stage YAML files, run in this order")
    parser.add_argument("--run", default="sample", help="curation run the stages train on")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--no-resume", action="store_true", help="start from step 0")
    args = parser.parse_args(argv)
    overrides = [f"run={args.run}", *args.overrides]
    try:  # every file is checked before the first stage starts
        configs = [load_train_config(path, overrides) for path in args.configs]
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = missing_inputs(configs)
    if problems:
        print(
            "error: missing inputs, nothing trained:\n  " + "\n  ".join(problems), file=sys.stderr
        )
        return 2
    try:
        todo = plan(configs, resume=not args.no_resume)
    except CheckpointMismatch as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for cfg in todo:
        print(f"== {cfg.name}: training {', '.join(cfg.trainable)} on run {cfg.run} ==", flush=True)
        if cfg.distributed.workers >= 1:
            from model.train.ray_launch import train_with_ray

            result = train_with_ray(cfg)
        else:
            from model.train.loop import train

            result = train(cfg)
        if result.losses:
            print(
                f"{cfg.name}: steps {result.first_step + 1}–{result.first_step + len(result.losses)}, "
                f"loss {result.losses[0]:.4f} → {result.losses[-1]:.4f}, "
                f"{result.tokens_per_s:,.0f} tokens/s, checkpoint {result.checkpoint}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
