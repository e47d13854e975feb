"""The README's newcomer path (the block after `<!-- newcomer-path -->`), run exactly as
written in a fresh copy of the repository: curation, instructions, the three training stages
and an answer from the trained model."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

MARKER = "<!-- newcomer-path -->"


def newcomer_commands(readme: str) -> list[list[str]]:
    """The block's commands: continuation lines joined, comments dropped, split as a shell
    would (no shell runs them)."""
    block = readme.split(MARKER, 1)[1]
    body = re.search(r"```bash\n(.*?)```", block, re.S)
    assert body, f"no bash block after {MARKER}"
    text = body.group(1).replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in text.splitlines() if line.strip()]


def _copy_repo(dst: Path) -> Path:
    """The files a clone would have (and new ones not ignored), with this checkout's environment."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src = REPO / name
        if src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
    (dst / ".venv").symlink_to(Path(sys.prefix))
    return dst


def test_commands_are_found():
    commands = newcomer_commands((REPO / "README.md").read_text())
    assert [c[:2] for c in commands[:2]] == [["make", "curate"], ["make", "instructions"]]
    assert commands[-2][:3] == [".venv/bin/python", "-m", "model.infer"]
    assert commands[-1][:2] == ["make", "eval"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to list the tracked files")
def test_the_newcomer_path_runs_as_written(tmp_path):
    repo = _copy_repo(tmp_path / "repo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "PYTEST"))}
    printed = {}
    for command in newcomer_commands((REPO / "README.md").read_text()):
        done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (
            f"{shlex.join(command)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        printed[command[2] if command[0].endswith("python") else command[1]] = done.stdout
    answer = printed["model.infer"]
    assert answer.startswith("answer: ") and "branch weights: interaction" in answer
    # The side-by-side table of every shipped benchmark, written where make report finds it.
    assert "| dfew | uar |" in printed["eval"] and "| 0.7486 |" in printed["eval"]
    evaluated = repo / "runs" / "sample" / "eval" / "stage3_joint-final" / "summary.json"
    assert {"dfew", "mafw", "humanvbench", "asr", "dfec", "vispeak"} <= set(
        json.loads(evaluated.read_text())["tasks"]
    )
    final = repo / "runs" / "sample" / "tiny" / "stage3_joint" / "final"
    assert (final / "model.safetensors").is_file()
