"""The GPU check script runs end to end (its CPU dry run: the tiny model, the same code)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_dry_run_ends_with_its_result_line():
    done = subprocess.run(
        [sys.executable, "bench/gpu_check.py", "--dry-run"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT bench=gpu_check device=cpu ")
    values = dict(re.findall(r"(\w+)=([\d.]+)", last))
    assert float(values["small_tokens_per_s"]) > 0 and float(values["7b_tokens_per_s"]) > 0
    assert "loss" in done.stdout and "nan" not in done.stdout
