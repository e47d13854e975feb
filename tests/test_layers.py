"""Imports run one way (command line -> engine -> stages -> libraries -> core): import-linter's
contracts in pyproject.toml, run here too so that a back-import fails CI, not only `make lint`."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO


def test_the_layer_contracts_hold_with_no_exceptions():
    pyproject = (REPO / "pyproject.toml").read_text()
    assert "ignore_imports" not in pyproject  # nothing is let through
    done = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as m; m()"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "layers: cli -> engine -> stages -> libraries -> core KEPT" in done.stdout
    assert "Contracts: 2 kept, 0 broken." in done.stdout
