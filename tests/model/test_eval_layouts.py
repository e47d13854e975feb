"""Benchmarks read from their own layouts: the shipped sets, and every way a label file can be
wrong (a clear error naming file and line) or a sample unusable (a row with its reason)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from train_fixtures import write_exports

from model.eval.layouts import LayoutError, read_dfew, read_mafw, read_run_val, read_vispeak
from model.eval.prepare import DATA_TASKS, SETS_DIR, TASKS_DIR, read_task, relative_docs

DFEW_CSV = Path("EmoLabel_DataSplit") / "test(single-labeled)" / "set_1.csv"
MAFW_TXT = Path("Train & Test Set") / "single" / "no_caption" / "set_1" / "test.txt"


def test_the_shipped_sets_read_in_their_layouts_with_the_labels_given_by_eye():
    dfew = read_task("dfew", SETS_DIR / "dfew")
    assert [(d["id"], d["label"]) for d in dfew.docs] == [
        ("1", "happy"), ("2", "happy"), ("3", "neutral"), ("4", "neutral"), ("5", "surprise"),
    ]  # fmt: skip
    # MAFW names its classes ("happiness"); the documents carry the release's words.
    assert [d["label"] for d in read_task("mafw", SETS_DIR / "mafw").docs] == [
        d["label"] for d in dfew.docs
    ]
    asr = read_task("asr", SETS_DIR / "asr").docs
    assert asr[0]["transcript"].startswith("GOOD MORNING") and asr[0]["audio"].endswith(".mp4")
    choice = read_task("humanvbench", SETS_DIR / "humanvbench").docs
    assert {d["category"] for d in choice} == {
        "action_count", "action_sequence", "fine_grained_action", "unexpected_action",
    }  # fmt: skip
    assert all(not s for t in DATA_TASKS for s in [read_task(t, SETS_DIR / t).skipped])


def test_the_shipped_task_documents_are_what_the_readers_make_of_the_sets():
    """model/eval/tasks/docs/ (what lmms-eval's own CLI reads) has not drifted from the sets:
    regenerate with `python -m model.eval.prepare`."""
    for task in DATA_TASKS:
        shipped = [
            json.loads(x) for x in (TASKS_DIR / "docs" / f"{task}.jsonl").read_text().splitlines()
        ]
        assert shipped == relative_docs(read_task(task, SETS_DIR / task).docs), task


def test_vispeak_polls_each_event_once_a_second_until_two_seconds_after_its_end():
    docs = read_vispeak(SETS_DIR / "vispeak").docs
    raise_both = [d for d in docs if d["event"] == "Gesture_Understanding/0"]
    assert [d["t"] for d in raise_both] == [1.0, 2.0, 3.0, 4.0]  # up to 2.4 + 2 s
    assert {(d["start"], d["end"]) for d in raise_both} == {(1.2, 2.4)}


@pytest.fixture
def dfew(tmp_path):
    root = tmp_path / "dfew"
    shutil.copytree(SETS_DIR / "dfew", root)
    return root


def test_a_missing_clip_is_a_row_with_its_reason_and_the_rest_are_read(dfew):
    (dfew / "Clip" / "original" / "00003.mkv").unlink()
    loaded = read_dfew(dfew)
    assert [d["id"] for d in loaded.docs] == ["1", "2", "4", "5"]
    assert loaded.skipped == [{
        "source": f"{dfew / DFEW_CSV}:4", "reason": "missing_video",
        "detail": f"no video named 3 under {dfew}",
    }]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,emotion\n1,1\n", "set_1.csv:1: expected the header 'video_name,label'"),
        ("video_name,label\n1,1\n2,9\n", "set_1.csv:3: expected video_name,label with a label 1-7"),
        ("video_name,label\n1,happy\n", "set_1.csv:2: expected video_name,label"),
    ],
)
def test_a_malformed_dfew_fold_names_the_file_and_line(dfew, text, message):
    (dfew / DFEW_CSV).write_text(text)
    with pytest.raises(LayoutError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_dfew(dfew)


def test_an_unknown_mafw_label_names_the_file_and_line(tmp_path):
    root = tmp_path / "mafw"
    shutil.copytree(SETS_DIR / "mafw", root)
    (root / MAFW_TXT).write_text("00001.mp4 happiness\n00002.mp4 joyful\n")
    with pytest.raises(LayoutError, match=r"test.txt:2: unknown label 'joyful'"):
        read_mafw(root)


def test_a_broken_annotation_json_names_the_file_and_line(tmp_path):
    root = tmp_path / "vispeak"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "Gesture_Understanding.json").write_text('[\n {"video": "a.mp4",\n')
    with pytest.raises(LayoutError, match=r"Gesture_Understanding.json:3: not JSON"):
        read_vispeak(root)


def test_the_runs_validation_split_is_one_document_per_question_of_each_branch(tmp_path):
    write_exports(tmp_path)
    docs = read_run_val(tmp_path).docs
    assert {d["branch"] for d in docs} == {"face", "body", "interaction"}
    face = [d for d in docs if d["branch"] == "face"]
    assert [(d["instruction"], d["captions"]) for d in face] == [
        ("What emotion does the person show?", ["The person looks calm."]),
        ("Describe the person's face.", ["A man with short dark hair."]),
    ]
    assert {d["modal"] for d in docs} == {"video"}  # the first clip is silent
    with pytest.raises(LayoutError, match="no validation exports"):
        read_run_val(tmp_path / "nothing")


def test_two_videos_of_one_name_in_different_folders_are_skipped_as_ambiguous(tmp_path):
    root = tmp_path / "humanvbench"
    shutil.copytree(SETS_DIR / "humanvbench", root)
    (root / "video" / "other").mkdir()
    shutil.copy(root / "video" / "chaplin.mp4", root / "video" / "other" / "chaplin.mp4")
    loaded = read_task("humanvbench", root)
    assert [(s["reason"], s["source"].rsplit("/", 1)[-1]) for s in loaded.skipped] == [
        ("ambiguous_video", "action_count.json#0")
    ]


def test_each_prepared_task_carries_its_documents_digest(tmp_path):
    """lmms-eval's response cache keys on the task's config: another fold's or dataset's
    documents must not be answered from the cache of this one."""
    import yaml

    from model.eval.prepare import prepare

    prepare(["dfew"], tmp_path / "a", None, None)
    data = tmp_path / "data"
    shutil.copytree(SETS_DIR / "dfew", data / "dfew")
    (data / "dfew" / DFEW_CSV).write_text("video_name,label\n1,2\n")
    prepare(["dfew"], tmp_path / "b", data, None)
    digests = [
        yaml.safe_load((tmp_path / x / "tasks" / "dfew.yaml").read_text())["metadata"]["documents"]
        for x in "ab"
    ]
    assert digests[0] != digests[1]
