"""The browse and report tests read the session's offline run (tests/offline_run.py), whose
file names and one clip's captions try to break out of HTML, JSON and the terminal."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import run_cli
from offline_run import HTML_NAME


@pytest.fixture(scope="session")
def browse_run(offline_run) -> Path:
    return offline_run


@pytest.fixture(scope="session")
def report(browse_run) -> Path:
    """The run's report, made through the CLI as a user would (page size 1: several pages)."""
    out = run_cli("report", "--run", browse_run.name, "--root", str(browse_run.parent),
                  "--page-size", "1", "--no-progress").stdout  # fmt: skip
    index = browse_run / "report" / "index.html"
    assert f"report: {index}" in out and index.as_uri() in out
    return index


@pytest.fixture(scope="session")
def html_clip(browse_run) -> str:
    """The id of the kept clip cut from the file named like HTML (the one with hostile text)."""
    rows = pq.read_table(browse_run / "structured").to_pylist()
    return next(r["clip_id"] for r in rows if r["path"].endswith(HTML_NAME))
