"""A stage's outputs belong to the run it trained on, and resume only on the same config and
data: `python -m model.train` as a user runs it, in a folder of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_fixtures import TINY_CONFIGS, write_exports

from model.train.__main__ import main

FACE = str(TINY_CONFIGS / "stage1_face.yaml")


@pytest.fixture
def project(tmp_path, monkeypatch, tiny_dir):
    """A working folder with two curated runs' exports, A and B."""
    for run in ("A", "B"):
        write_exports(tmp_path / "data_manifests" / run)
    monkeypatch.chdir(tmp_path)
    sets = [f"model.tiny_dir={tiny_dir}", "schedule.steps=2", "data.num_workers=0"]
    return tmp_path, [x for s in sets for x in ("--set", s)]


def test_each_run_trains_its_own_stage_and_records_what_it_read(project, capsys):
    folder, sets = project
    assert main([FACE, "--run", "A", *sets]) == 0
    assert main([FACE, "--run", "B", *sets]) == 0  # not "already finished": another run
    out = capsys.readouterr().out
    assert "already finished" not in out and "on run B" in out
    for run in ("A", "B"):
        final = folder / "runs" / run / "tiny" / "stage1_face" / "final"
        recorded = json.loads((final / "train_config.json").read_text())
        assert recorded["run"] == run
        assert recorded["data"]["train"] == [f"data_manifests/{run}/exports/face.json"]
        assert recorded["data"]["val"] == [f"data_manifests/{run}/exports/val/face.json"]
    assert main([FACE, "--run", "A", *sets]) == 0
    assert "stage1_face: already finished" in capsys.readouterr().out


def test_other_data_or_settings_never_resume_silently(project, capsys):
    folder, sets = project
    assert main([FACE, "--run", "A", *sets]) == 0
    face = folder / "data_manifests" / "A" / "exports" / "face.json"
    face.write_text(json.dumps(json.loads(face.read_text())[:2]))  # the run was re-curated
    assert main([FACE, "--run", "A", *sets, "--set", "optim.lr=0.01"]) == 2
    err = capsys.readouterr().err
    assert "optim.lr" in err and "data data_manifests/A/exports/face.json" in err
    # Logging and loader settings are not part of what was trained.
    assert main([FACE, "--run", "A", *sets, "--set", "log_every=5"]) == 2  # the data still differs
    assert main([FACE, "--run", "A", *sets, "--no-resume"]) == 0
    stage = folder / "runs" / "A" / "tiny" / "stage1_face"
    assert (stage / "checkpoints.replaced").is_dir() and (stage / "final").is_dir()
    assert main([FACE, "--run", "A", *sets, "--set", "log_every=5"]) == 0
    assert "already finished" in capsys.readouterr().out


def test_a_bad_run_name_is_a_config_error(project, capsys):
    _, sets = project
    assert main([FACE, "--run", "../elsewhere", *sets]) == 2
    assert "run:" in capsys.readouterr().err


def test_stage_configs_resolve_their_placeholders():
    from model.train.config import load_train_config

    cfg = load_train_config(TINY_CONFIGS / "stage3_joint.yaml", ["run=X"])
    assert cfg.output_path() == Path("runs/X/tiny/stage3_joint")
    assert [i.checkpoint for i in cfg.init_from] == [
        "runs/X/tiny/stage1_visual/final",
        "runs/X/tiny/stage2_audio/final",
    ]
    assert cfg.data.train == ["data_manifests/X/exports/mixed.json"]
