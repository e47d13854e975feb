"""`python -m curation browse` and `python -m curation report` (curation/cli/__init__.py registers them).

Both read a run read-only, so they may run beside a curate that is still writing it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from curation.browse.layout import BrowseError, open_layout, resolve_run
from curation.browse.text import format_clip, format_table, json_safe
from curation.storage import Storage, is_uri
from stages import registry

EXIT_USAGE = 2  # as curation.cli: a bad run name, query or clip id; nothing was done

# Shown by a listing when --columns is not given (those the run has so far).
DEFAULT_COLUMNS = ["clip_id", "stage", "kept", "reject_reason", "duration_s", "keyframes",
                   "frames_with_face", "agreement", "path"]  # fmt: skip


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run name, or a run's path or URI")
    p.add_argument(
        "--root",
        help="folder or object-store URI holding runs (default: --config's run.root, else "
        "data_manifests)",
    )
    p.add_argument(
        "--config", type=Path, help="a curate profile: its run.root is the folder of runs"
    )


def _run_path(args: argparse.Namespace) -> Storage:
    root = args.root
    if root is None and args.config is not None:
        from curation.engine.config import load_config

        root = load_config(args.config).run.root
    return resolve_run(args.run, root or "data_manifests")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "browse",
        help="explore a run with DuckDB: funnel summary, clips matching a WHERE clause, one clip",
        description="Without a mode flag: the funnel summary. Views for --sql: per_clip (one row "
        "per clip, every stage's columns), one per stage folder (sources, scenes, clips, ...), "
        "instructions_<branch> and pairs.",
    )
    _run_args(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--where", metavar="SQL", help="list clips matching a SQL WHERE clause over per_clip"
    )
    mode.add_argument("--list", action="store_true", help="list clips (all of them, up to --limit)")
    mode.add_argument(
        "--clip", metavar="ID", help="one clip with every field (a unique id prefix will do)"
    )
    mode.add_argument("--sql", metavar="QUERY", help="any SQL over the run's views (see above)")
    mode.add_argument("--schema", action="store_true", help="per_clip's columns and their types")
    p.add_argument("--columns", help="comma-separated columns or expressions for a listing")
    p.add_argument("--order-by", default="clip_id", help="ORDER BY of a listing (default clip_id)")
    p.add_argument("--limit", type=int, default=20, help="rows to show (default 20)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_browse)

    p = sub.add_parser(
        "report", help="static HTML report of a run under <run>/report/ (opens from file://)"
    )
    _run_args(p)
    p.add_argument("--max-clips", type=int, default=240, help="clips in the gallery (default 240)")
    p.add_argument("--page-size", type=int, default=12, help="gallery clips per page (default 12)")
    p.add_argument("--frames", type=int, default=6,
                   help="thumbnails per clip without a boxes row (clips with one show the frames the detectors saw)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--eval", type=Path, metavar="DIR",
                   help="make eval's results to show (default runs/<run>/eval, when there)")  # fmt: skip
    p.set_defaults(func=cmd_report)


def _emit(data: Any, text: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(json_safe(data), ensure_ascii=False, indent=2))
    else:
        print(text)


def _browse(args: argparse.Namespace) -> None:
    # DuckDB loads only when browsing: every other `python -m curation` command goes without.
    from curation.browse.db import RunDB
    from curation.browse.summary import format_summary, funnel

    db = RunDB(open_layout(_run_path(args), registry.default_folders()))
    if args.clip:
        record = db.clip(args.clip)
        _emit(record, format_clip(record), args.json)
    elif args.sql:
        columns, rows = db.rows(args.sql, what="bad --sql query")
        shown = rows[: args.limit] if not args.json else rows
        note = f"\n({len(rows)} rows, {len(shown)} shown)" if len(shown) < len(rows) else ""
        _emit({"columns": columns, "rows": [dict(zip(columns, r, strict=True)) for r in rows]},
              format_table(columns, shown) + note, args.json)  # fmt: skip
    elif args.schema:
        columns, rows = db.rows("DESCRIBE per_clip")
        _emit(
            {r[0]: r[1] for r in rows},
            format_table(["column", "type"], [r[:2] for r in rows], 80),
            args.json,
        )
    elif args.where is not None or args.list or args.columns:
        wanted = [c.strip() for c in args.columns.split(",")] if args.columns else [
            c for c in DEFAULT_COLUMNS if c in db.columns]  # fmt: skip
        count, columns, rows = db.select_clips(args.where, wanted, args.order_by, args.limit)
        text = format_table(columns, rows) + f"\n{count} clips match, {len(rows)} shown"
        _emit({"count": count, "columns": columns, "rows": [dict(zip(columns, r, strict=True)) for r in rows]},
              text, args.json)  # fmt: skip
    else:
        summary = funnel(db)
        _emit(summary, format_summary(summary), args.json)


def cmd_browse(args: argparse.Namespace) -> int:
    try:
        _browse(args)
    except BrowseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `browse ... | head` stopped reading: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    return 0


def _evaluations(folder: Path) -> list[dict[str, Any]]:
    """The summaries `make eval` wrote under `folder`, one per evaluated checkpoint."""
    found = []
    for path in sorted(folder.glob("*/summary.json")):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            print(f"warning: {path} left out of the report: {exc}", file=sys.stderr)
    return found


def cmd_report(args: argparse.Namespace) -> int:
    from curation.browse.report import build_report  # decoding frames pulls in more imports

    try:
        path = _run_path(args)
        result = build_report(path, max_clips=args.max_clips, page_size=args.page_size,
                              frames=args.frames, progress=not args.no_progress,
                              default_stages=registry.default_folders(),
                              evaluations=_evaluations(args.eval or Path("runs") / args.run / "eval"))  # fmt: skip
    except BrowseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"report: {result.index}")
    if not is_uri(result.index):
        print(f"open it: {Path(result.index).as_uri()}")
    t = result.thumbs
    print(f"clips in the gallery: {result.clips} of {result.total_clips}; thumbnails: {t['made']} "
          f"made, {t['reused']} reused, {t['failed_clips']} clips failed")  # fmt: skip
    return 0
