"""`make eval` end to end on the tiny model: a converted HumanOmni release scored on every
project task through lmms-eval's CLI, over data with a missing and a broken clip, resumed from
lmms-eval's response cache; and lmms-eval's own CLI running the model on a project task and on
one of its own (MVBench's task, over a local copy in MVBench's layout)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from release_fixture import write_release
from train_fixtures import write_exports

from model.convert import main as convert
from model.eval.__main__ import main as evaluate
from model.eval.prepare import DATA_TASKS, SETS_DIR, TASKS_DIR

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_dir):
    folder = tmp_path_factory.mktemp("eval")
    write_release(folder / "release", tiny_dir)
    assert (
        convert(
            [
                str(folder / "release"),
                str(folder / "HumanOmni-tiny"),
                "--bert",
                str(tiny_dir / "bert"),
            ]
        )
        == 0
    )
    return folder / "HumanOmni-tiny"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The shipped sets, but one DFEW clip missing and one MAFW clip not a video at all."""
    root = tmp_path_factory.mktemp("benchmarks")
    for task in DATA_TASKS:
        shutil.copytree(SETS_DIR / task, root / task)
    (root / "dfew" / "Clip" / "original" / "00003.mkv").unlink()
    broken = root / "mafw" / "data" / "clips" / "00004.mkv"
    broken.unlink()
    broken.write_bytes(b"not a video")
    return root


@pytest.fixture(scope="module")
def evaluated(checkpoint, data, tmp_path_factory, monkeypatch_module, tiny_models):
    run_dir = tmp_path_factory.mktemp("run")
    write_exports(run_dir)
    runs = tmp_path_factory.mktemp("runs")
    # DFEC's judge: the tiny Qwen2 through the project's transformers backend.
    judge = run_dir / "judge.yaml"
    judge.write_text(f"kind: transformers\nmodel: {tiny_models['qwen2']}\nmax_tokens: 12\n")
    argv = ["--checkpoint", str(checkpoint), "--data", str(data), "--run-dir", str(run_dir),
            "--runs-root", str(runs), "--run", "t", "--max-new-tokens", "4", "--judge", str(judge)]  # fmt: skip
    assert evaluate(argv) == 0
    return runs / "t" / "eval" / f"{checkpoint.parent.name}-{checkpoint.name}", argv


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield patch


def test_every_project_task_is_scored_beside_the_papers_numbers(evaluated):
    out, _ = evaluated
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["tasks"]) == {*DATA_TASKS, "run_val"}
    dfew = summary["tasks"]["dfew"]
    assert set(dfew["metrics"]) == {"uar", "war", "invalid_rate", "release_uar"}
    assert dfew["paper"] == {"uar": 0.7486, "war": 0.8246}
    assert (dfew["samples"], dfew["skipped"]) == (4, 1)
    assert set(summary["tasks"]["run_val"]["by_group"]) == {"face", "body", "interaction"}
    table = (out / "summary.md").read_text()
    assert "| dfew | uar |" in table and "| 0.7486 |" in table and "samples/s" in table


def test_dfecs_judged_scores_are_the_means_of_the_logged_judgements(evaluated):
    out, _ = evaluated
    metrics = json.loads((out / "summary.json").read_text())["tasks"]["dfec"]["metrics"]
    rows = [json.loads(x) for x in (out / "dfec_judge.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 4  # two captions, four dimensions
    assert all(r["score"] in range(6) for r in rows)  # constrained to the schema
    for name in ("correctness", "detail", "context", "temporal"):
        scores = [r["score"] for r in rows if r["dimension"] == name]
        assert metrics[f"judge_{name}"] == pytest.approx(sum(scores) / len(scores))
    assert metrics["judge_failed"] == 0.0


def test_a_missing_clip_is_skipped_and_a_broken_one_answered_empty_with_its_reason(evaluated):
    out, _ = evaluated
    skipped = [json.loads(x) for x in (out / "skipped.jsonl").read_text().splitlines()]
    assert [(s["task"], s["reason"]) for s in skipped] == [("dfew", "missing_video")]
    errors = [json.loads(x) for x in (out / "sample_errors.jsonl").read_text().splitlines()]
    assert [(e["task"], e["doc_id"], e["reason"]) for e in errors] == [
        ("mafw", 3, "video_unreadable")
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tasks"]["mafw"]["samples"] == 5  # scored, as wrong
    logged = [
        json.loads(x)
        for x in next(out.glob("lmms/*/*_samples_mafw.jsonl")).read_text().splitlines()
    ]
    assert [s["war"]["prediction"] for s in logged if s["doc_id"] == 3] == [""]
    assert all({"target", "filtered_resps"} <= set(s) for s in logged)


def test_a_rerun_answers_from_the_cache(evaluated):
    out, argv = evaluated
    db = out / "cache" / "cache.db"

    def cached() -> int:
        with sqlite3.connect(db) as con:
            return con.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    before = cached()
    assert before > 0
    first = json.loads((out / "summary.json").read_text())["tasks"]["dfew"]
    assert evaluate([*argv, "--tasks", "dfew"]) == 0
    again = json.loads((out / "summary.json").read_text())["tasks"]["dfew"]
    assert cached() == before  # nothing new was answered
    assert again["metrics"] == first["metrics"]


def test_lmms_evals_own_cli_runs_the_model_on_a_project_task_and_on_mvbench(checkpoint, tmp_path):
    """MVBench's task as lmms-eval ships it, reading the shipped action_sequence question in
    MVBench's own layout from a local folder instead of the Hub."""
    import lmms_eval

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "dfew.yaml").write_text(f"include: {TASKS_DIR / 'dfew.yaml'}\n")
    mvbench = Path(lmms_eval.__file__).parent / "tasks" / "mvbench" / "mvbench_action_sequence.yaml"
    (tasks / "mvbench_local.yaml").write_text(
        f"include: {mvbench}\ntask: mvbench_local\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    train: {SETS_DIR / 'humanvbench' / 'json' / 'action_sequence.json'}\n"
    )
    videos = tmp_path / "hf" / "mvbench_video" / "star" / "Charades_segment"
    videos.mkdir(parents=True)
    shutil.copy(SETS_DIR / "humanvbench" / "video" / "raise_both_hands.mp4", videos)
    env = dict(
        os.environ, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1"
    )
    command = [
        sys.executable, "-m", "lmms_eval", "--model", "humanomni_curate",
        "--model_args", f"max_new_tokens=4,checkpoint={checkpoint}",
        "--tasks", "dfew,mvbench_local", "--include_path", str(tasks),
        "--output_path", str(tmp_path / "out"), "--log_samples", "--limit", "2",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(next((tmp_path / "out").rglob("*_results.json")).read_text())["results"]
    assert "mvbench_accuracy,none" in results["mvbench_local"]
    assert "uar,none" in results["dfew"]
    logged = next((tmp_path / "out").rglob("*_samples_mvbench_local.jsonl")).read_text()
    sample = json.loads(logged.splitlines()[0])
    assert "raises both arms" in sample["input"]  # MVBench's prompt, with the shipped question
    assert sample["filtered_resps"]  # answered: the clip was read from MVBench's folder layout
