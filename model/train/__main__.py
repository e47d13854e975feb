"""Train one or more stages in order:

    python -m model.train configs/train/stage1_face.yaml [more.yaml ...] [--run RUN]
        [--set optim.lr=1e-4 ...] [--no-resume]

`{run}` in data paths becomes RUN (the curation run under data_manifests/). A stage whose
output folder has checkpoints resumes from the newest one unless --no-resume is given;
a stage that already finished is skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curation.config_base import ConfigError
from model.train.checkpoint import latest_checkpoint, read_trainer_state
from model.train.config import TrainConfig, load_train_config
from model.weights import has_weights


def missing_inputs(configs: list[TrainConfig], run: str) -> list[str]:
    """Data files and earlier checkpoints the stages need, checked before the first one starts;
    a checkpoint an earlier stage of this same command will write counts as present."""
    problems, coming = [], set()
    for cfg in configs:
        for pattern in cfg.data.train:
            if not Path(pattern.format(run=run)).exists():
                problems.append(
                    f"{cfg.name}: data.train {pattern!r} → {pattern.format(run=run)} not found"
                )
        for init in cfg.init_from:
            folder = Path(init.checkpoint)
            if not has_weights(folder) and folder.resolve() not in coming:
                problems.append(
                    f"{cfg.name}: init_from checkpoint {folder} not found (train its stage first)"
                )
        coming.add((cfg.output_path() / "final").resolve())
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("configs", nargs="+", help="stage YAML files, run in this order")
    parser.add_argument("--run", default="sample", help="curation run the data paths name")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--no-resume", action="store_true", help="start from step 0")
    args = parser.parse_args(argv)
    try:  # every file is checked before the first stage starts
        configs = [load_train_config(path, args.overrides) for path in args.configs]
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = missing_inputs(configs, args.run)
    if problems:
        print(
            "error: missing inputs, nothing trained:\n  " + "\n  ".join(problems), file=sys.stderr
        )
        return 2
    for cfg in configs:
        done = latest_checkpoint(cfg.output_path())
        state = read_trainer_state(done) if done else {}
        if not args.no_resume and done and state["step"] >= state["total_steps"]:
            print(f"{cfg.name}: already finished ({done}); --no-resume to train it again")
            continue
        print(f"== {cfg.name}: training {', '.join(cfg.trainable)} ==", flush=True)
        if cfg.distributed.workers >= 1:
            from model.train.ray_launch import train_with_ray

            result = train_with_ray(cfg, run=args.run, resume=not args.no_resume)
        else:
            from model.train.loop import train

            result = train(cfg, run=args.run, resume=not args.no_resume)
        if result.losses:
            print(
                f"{cfg.name}: steps {result.first_step + 1}–{result.first_step + len(result.losses)}, "
                f"loss {result.losses[0]:.4f} → {result.losses[-1]:.4f}, "
                f"{result.tokens_per_s:,.0f} tokens/s, checkpoint {result.checkpoint}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
