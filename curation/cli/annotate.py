"""`python -m curation annotate | annotate-pull | annotate-server` (make annotate ...)."""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

EXIT_USAGE = 2
EXIT_SERVER = 3
LABEL_STUDIO = ".venv-annotate/bin/label-studio"  # make annotate-env builds it
USER = "annotator@localhost.localdomain"


def _run_and_config(args: argparse.Namespace):
    from curation.cli import _load_for_run

    return _load_for_run(args)


def cmd_annotate(args: argparse.Namespace) -> int:
    from curation.engine.annotate import StudioError, annotate

    config, run = _run_and_config(args)
    try:
        print(annotate(config, run, args.task, args.n))
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SERVER
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from curation.engine.annotate import StudioError, format_agreement, pull

    config, run = _run_and_config(args)
    try:
        figures = pull(config, run)
    except StudioError as exc:  # nothing was written: what was pulled before stays
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SERVER
    print(f"annotations -> {run.uri('annotations')}/\n{format_agreement(figures)}")
    return 0


def _credentials(folder: Path, token_env: str) -> tuple[str, str]:
    """The local server's token and password: the token from the environment when set, else
    made once and kept in <data>/token (readable by its owner only), with the password."""
    folder.mkdir(parents=True, exist_ok=True)
    kept = folder / "token"
    words = kept.read_text().split() if kept.is_file() else []
    if len(words) >= 2:
        token, password = words[:2]
    else:
        token, password = secrets.token_hex(20), secrets.token_urlsafe(12)
        kept.touch(mode=0o600)
        kept.write_text(f"{token} {password}\n")
    return os.environ.get(token_env) or token, password


def cmd_server(args: argparse.Namespace) -> int:
    from curation.engine.annotate import local_server_dir

    config, run = _run_and_config(args)
    if not run.storage.is_local or not run.path.is_dir():
        print(f"error: no local run at {run.location}: curate it first", file=sys.stderr)
        return EXIT_USAGE
    binary = Path(args.label_studio)
    if not binary.is_file():
        print(f"error: Label Studio is not installed at {binary}: run make annotate-env "
              "(it gets a virtual environment of its own)", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    data = local_server_dir(run)
    token, password = _credentials(data, config.annotate.token_env)
    url = urlparse(config.annotate.url)
    # The credentials travel in the environment, not the command line (which `ps` shows).
    env = dict(os.environ, LOCAL_FILES_SERVING_ENABLED="true",
               LOCAL_FILES_DOCUMENT_ROOT=str(run.path), LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
               LABEL_STUDIO_USERNAME=USER, LABEL_STUDIO_PASSWORD=password,
               LABEL_STUDIO_USER_TOKEN=token)  # fmt: skip
    command = [str(binary), "start", "--no-browser", "--data-dir", str(data),
               "--port", str(url.port or 8080), "--internal-host", url.hostname or "127.0.0.1",
               "--host", config.annotate.url, "--enable-legacy-api-token"]  # fmt: skip
    print(f"Label Studio for run {run.name} at {config.annotate.url} (data in {data}); log in "
          f"as {USER} with the password in {data / 'token'} (second word). Ctrl-C stops it.")  # fmt: skip
    sys.stdout.flush()
    try:
        return subprocess.run(command, env=env, check=False).returncode
    except KeyboardInterrupt:
        return 0


def add_parsers(sub: argparse._SubParsersAction, add_config_args) -> None:
    from curation.annotate.tasks import TASKS

    p = sub.add_parser("annotate", help="add clips of a run to its Label Studio project for a task")
    p.add_argument("--run", required=True, help="a curated run: data_manifests/<run>/")
    p.add_argument("--task", choices=TASKS, required=True)
    p.add_argument("--n", type=int, default=10, help="clips to add (default 10)")
    add_config_args(p)
    p.set_defaults(func=cmd_annotate)

    p = sub.add_parser("annotate-pull", help="completed annotations into <run>/annotations/")
    p.add_argument("--run", required=True, help="a curated run: data_manifests/<run>/")
    add_config_args(p)
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("annotate-server", help="Label Studio on this machine for a run's clips")
    p.add_argument("--run", required=True, help="a curated run: data_manifests/<run>/")
    p.add_argument("--label-studio", default=LABEL_STUDIO, help=f"its executable ({LABEL_STUDIO})")
    add_config_args(p)
    p.set_defaults(func=cmd_server)
