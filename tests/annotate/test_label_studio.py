"""Annotation end to end on a real Label Studio server: tasks made by `annotate` from a curated
run, labels submitted through the REST API as two annotators would (one accepts the pipeline's
predictions, one corrects them; an unknown label, an empty field and a skip among them),
pulled twice, and the agreement figures checked against values worked out by hand."""

from __future__ import annotations

import json

import httpx
import pyarrow.parquet as pq
import pytest
from helpers import run_cli

from curation.annotate.tasks import SPEAKS
from curation.core.fields import RELEASE_EMOTIONS

pytestmark = pytest.mark.slow


def _api(studio) -> httpx.Client:
    return httpx.Client(
        base_url=studio.url, headers={"Authorization": f"Token {studio.token}"}, timeout=60
    )


def _tasks(api: httpx.Client, project: int) -> list[dict]:
    params = {"exportType": "JSON", "download_all_tasks": "true"}
    return sorted(
        api.get(f"/api/projects/{project}/export", params=params).json(), key=lambda t: t["id"]
    )


def _submit(api, task, user, result, cancelled=False):
    body = {"result": result, "lead_time": 2.5, "completed_by": user, "was_cancelled": cancelled}
    response = api.post(f"/api/tasks/{task['id']}/annotations", json=body)
    assert response.status_code == 201, response.text


def _choice(name, value):
    return {"from_name": name, "to_name": "video", "type": "choices", "value": {"choices": [value]}}


def _text(name, value):
    return {"from_name": name, "to_name": "video", "type": "textarea", "value": {"text": [value]}}


@pytest.fixture(scope="module")
def labelled(studio):
    added = {
        t: run_cli("annotate", *studio.args("--task", t, "--n", "10")).stdout
        for t in ("emotion", "face", "speech")
    }
    again = run_cli("annotate", *studio.args("--task", "emotion", "--n", "10")).stdout
    projects = json.loads((studio.run / "run.json").read_text())["annotation"]["projects"]
    api = _api(studio)
    second = api.post(
        "/api/users", json={"email": "second@localhost.localdomain", "username": "second"}
    ).json()["id"]
    emotion = _tasks(api, projects["emotion"]["project"])
    x, y = emotion[0], emotion[1]
    # The tiny models may leave a clip's emotion empty: then there is nothing to accept, and
    # the first annotator labels it "neutral".
    px, py = x["data"]["pipeline"].get("emotion"), y["data"]["pipeline"].get("emotion")
    lx, ly = px or "neutral", py or "neutral"
    corrected = next(w for w in RELEASE_EMOTIONS if w not in (lx, ly))
    _submit(api, x, 1, [_choice("emotion", lx)])  # the first accepts the predictions
    _submit(api, y, 1, [_choice("emotion", ly)])
    _submit(api, x, second, [_choice("emotion", lx)])  # the second agrees on x, corrects y
    _submit(api, y, second, [_choice("emotion", corrected)])
    _submit(api, y, 1, [_choice("emotion", "joyful")])  # not one of the release's words
    face = _tasks(api, projects["face"]["project"])
    for task in face:
        description = task["data"]["pipeline"].get("description") or "A calm face."
        _submit(api, task, 1, [_text("description", description)])
    _submit(api, face[0], second, [_text("description", "")])  # an empty field
    _submit(api, face[1], second, [], cancelled=True)  # skipped
    (speech,) = _tasks(api, projects["speech"]["project"])
    heard = speech["data"]["pipeline"]["transcript"]
    words = heard.split()
    changed = " ".join([*words[:-1], "elsewhere"])  # the second hears the last word otherwise
    _submit(api, speech, 1, [_choice("speaks", SPEAKS[0]), _text("transcript", heard)])
    _submit(api, speech, second, [_choice("speaks", SPEAKS[0]), _text("transcript", changed)])
    predicted_faces = sum(bool(t["data"]["pipeline"].get("description")) for t in face)
    return {"added": added, "again": again, "projects": projects, "api": api, "px": px, "py": py,
            "lx": lx, "ly": ly, "x": x["data"]["clip_id"], "words": len(words), "face": face,
            "predicted_faces": predicted_faces}  # fmt: skip


def test_annotate_sends_each_kept_clip_once_with_the_pipelines_answer(studio, labelled):
    assert (
        "2 clips added" in labelled["added"]["emotion"]
        and "2 clips added" in labelled["added"]["face"]
    )
    assert "1 clips added" in labelled["added"]["speech"]  # only the talking head has a speaker
    assert "0 clips added" in labelled["again"]  # a clip is never sent twice for one task
    task = _tasks(labelled["api"], labelled["projects"]["emotion"]["project"])[0]
    assert task["data"]["pipeline_source"].startswith(f"{studio.run.name}/structure (")
    clip = labelled["api"].get(task["data"]["video"])  # Label Studio serves the clip itself
    assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4"


def test_pulled_labels_and_agreement_are_what_was_submitted(studio, labelled):
    out = run_cli("annotate-pull", *studio.args()).stdout
    figures = json.loads((studio.run / "run.json").read_text())["annotation"]["agreement"]
    # x: two identical labels; y: the prediction and a correction ("joyful" is left out). With
    # three distinct words n = (2, 1, 1): alpha = 1 - 3 * 2 / (2 * (2 + 2 + 1)) = 0.4; when
    # the pipeline gave x and y the same word, n = (3, 1): alpha = 1 - 3 * 2 / (2 * 3) = 0.
    expected_alpha = 0.4 if labelled["lx"] != labelled["ly"] else 0.0
    assert figures["emotion_alpha"] == pytest.approx(expected_alpha)
    # Against the pipeline: x's two labels are its prediction, y's first is and its second not.
    px, py = labelled["px"], labelled["py"]
    accuracy = {(True, True): 3 / 4, (True, False): 1.0, (False, True): 1 / 2, (False, False): None}
    assert figures["pipeline_emotion_accuracy"] == pytest.approx(accuracy[bool(px), bool(py)])
    n = labelled["words"]
    assert figures["annotator_transcript_wer"] == pytest.approx(1 / n)
    assert figures["pipeline_transcript_wer"] == pytest.approx(1 / (2 * n))
    assert figures["speaker_confirmed"] == 1.0
    assert (figures["annotations"], figures["skipped"]) == (11, 1)
    # Ten labelled annotations; accepted unchanged: the first's emotions where there was a
    # prediction, the second's on x, the first's faces where there was one, and its speech.
    accepted = bool(px) + bool(py) + bool(px) + labelled["predicted_faces"] + 1
    assert figures["accepted_predictions"] == pytest.approx(accepted / 10)
    assert "emotion_alpha" in out
    emotion = pq.read_table(studio.run / "annotations" / "emotion.parquet").to_pylist()
    assert [r["problem"] for r in emotion].count("unknown emotion 'joyful'") == 1
    face = pq.read_table(studio.run / "annotations" / "face.parquet").to_pylist()
    assert sorted((r["skipped"], r["description"] is None) for r in face) == [
        (False, False), (False, False), (False, True), (True, True)]  # fmt: skip
    # Pulling again adds nothing twice.
    run_cli("annotate-pull", *studio.args())
    assert pq.read_table(studio.run / "annotations" / "emotion.parquet").to_pylist() == emotion


def test_a_server_that_is_down_or_a_bad_token_changes_nothing_already_pulled(studio, labelled):
    run_cli("annotate-pull", *studio.args())
    before = (studio.run / "annotations" / "face.parquet").read_bytes()
    down = run_cli(
        "annotate-pull", *studio.args("--set", "annotate.url=http://127.0.0.1:9"), check=False
    )
    assert down.returncode == 3 and "does not answer" in down.stderr
    bad = run_cli("annotate-pull", *studio.args("--set", "annotate.token_env=WRONG_TOKEN"), check=False,
                  env={"WRONG_TOKEN": "not-the-token"})  # fmt: skip
    assert bad.returncode == 3 and "refused the API token" in bad.stderr
    assert "not-the-token" not in bad.stderr + bad.stdout
    assert (studio.run / "annotations" / "face.parquet").read_bytes() == before
    assert studio.token not in (studio.run / "run.json").read_text()


def test_a_task_deleted_on_the_server_is_gone_after_the_next_pull(studio, labelled):
    face = labelled["face"]
    assert labelled["api"].delete(f"/api/tasks/{face[1]['id']}").status_code == 204
    run_cli("annotate-pull", *studio.args())
    rows = pq.read_table(studio.run / "annotations" / "face.parquet").to_pylist()
    assert {r["clip_id"] for r in rows} == {face[0]["data"]["clip_id"]}


def test_make_instructions_prefers_the_human_labels(studio, labelled):
    run_cli("annotate-pull", *studio.args())
    out = run_cli("instructions", *studio.args("--set", "instructions.llm_questions=0")).stdout
    assert "human labels (make annotate-pull), clips: emotion 2 (paper 50,000)" in out
    exports = studio.run / "exports"
    face = json.loads((exports / "face.json").read_text()) + json.loads(
        (exports / "val" / "face.json").read_text()
    )
    x = labelled["face"][0]["data"]["clip_id"]  # its face labels: one description, one empty
    item = next(i for i in face if i["id"] == f"{x}-face")
    turns = {
        t["value"].removeprefix("<video>\n").removeprefix("<audio>\n"): n
        for n, t in enumerate(item["conversations"])
    }
    asked = [q for q in turns if q.startswith("As an emotional recognition expert")]
    assert len(asked) == 1 and "helpless" in asked[0]  # the release's question and 11 options
    # x: both gave lx; y: ly and a correction (a tie: the earlier annotation's word).
    answer = item["conversations"][turns[asked[0]] + 1]["value"]
    assert answer == (labelled["lx"] if x == labelled["x"] else labelled["ly"])
    pairs = pq.read_table(studio.run / "instructions" / "face").to_pylist()
    machine = {
        p["question"]
        for p in pairs
        if p["clip_id"] == x and p["field"] in ("face.emotion", "face.expression")
    }
    assert machine and not machine & set(turns)  # the machine's pairs on the same thing are gone
    assert "face.emotion" not in json.dumps(item) and item["human"][0] == "emotion"


def test_the_labelling_page_shows_the_clip_in_a_headless_browser(studio, labelled, tmp_path):
    """The web UI works without the internet."""
    import os
    import sys
    import time
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browse"))
    from cdp_client import Chromium, find_chromium

    binary = find_chromium()
    if binary is None:
        if os.environ.get("REQUIRE_CHROMIUM"):
            pytest.fail("Chromium is required (REQUIRE_CHROMIUM) but not installed")
        pytest.skip("Chromium is not installed")
    password = (studio.run / "annotations" / "label-studio" / "token").read_text().split()[1]
    project = labelled["projects"]["emotion"]["project"]
    task = _tasks(labelled["api"], project)[0]["id"]
    with Chromium(binary, timeout_s=60) as page:
        page.open(f"{studio.url}/user/login/")
        page.evaluate(
            "(() => { document.querySelector('input[name=email]').value = "
            f"'annotator@localhost.localdomain'; document.querySelector('input[name=password]')"
            f".value = {json.dumps(password)}; document.querySelector('form').submit(); }})()"
        )
        time.sleep(3)
        page.open(f"{studio.url}/projects/{project}/data?task={task}")
        ready = -1
        for _ in range(60):  # the player has the clip's metadata (readyState 1) or more
            ready = page.evaluate(
                "(() => { const v = document.querySelector('video'); return v ? v.readyState : -1; })()"
            )
            if ready >= 1:
                break
            time.sleep(1)
        shot = page.screenshot(tmp_path / "labelling.png")
        text = page.evaluate("document.body.innerText")
        # Label Studio's own extras fail offline (error reporting, a tips endpoint); the clip
        # and the page's scripts must not.
        errors = [e for e in page.errors() if "local-files" in e or e.startswith("exception")]
    assert ready >= 1 and shot.stat().st_size > 10_000
    assert "Which emotion does the person show most clearly?" in text and "helpless" in text
    assert not errors, errors
