"""A real Label Studio server for the annotation tests, started once per session by the
project's own `annotate-server` command over a copy of the session's offline run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from helpers import REPO, free_port

LABEL_STUDIO = REPO / ".venv-annotate" / "bin" / "label-studio"


@dataclass
class Server:
    run: Path
    url: str
    token: str

    def args(self, *extra: str) -> list[str]:
        """The CLI arguments that point a command at this run and server."""
        return ["--run", self.run.name, "--set", f"run.root={self.run.parent}",
                "--set", f"annotate.url={self.url}", *extra]  # fmt: skip


@pytest.fixture(scope="session")
def studio(offline_run, tmp_path_factory):
    if not LABEL_STUDIO.is_file():
        message = f"Label Studio is not installed at {LABEL_STUDIO}: make annotate-env"
        if os.environ.get("REQUIRE_LABEL_STUDIO"):
            pytest.fail(message)
        pytest.skip(message)
    run = tmp_path_factory.mktemp("annotate") / offline_run.name
    shutil.copytree(offline_run, run)
    url = f"http://127.0.0.1:{free_port()}"
    server = Server(run, url, "")
    env = {k: v for k, v in os.environ.items() if k != "LABEL_STUDIO_TOKEN"}
    log = (run.parent / "label-studio.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "curation", "annotate-server", *server.args(),
         "--label-studio", str(LABEL_STUDIO)],
        cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"Label Studio did not start:\n{(run.parent / 'label-studio.log').read_text()[-3000:]}"
                )
            time.sleep(1)
        server.token = (run / "annotations" / "label-studio" / "token").read_text().split()[0]
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
