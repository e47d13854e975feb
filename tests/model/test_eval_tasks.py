"""The project's lmms-eval tasks scored by lmms-eval's own evaluator: a model that answers from
the label scores perfectly on every task, one that answers by a fixed rule scores what is worked
out by hand, and every aggregate is recomputed from the logged samples."""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
lmms_eval = pytest.importorskip("lmms_eval")

from lmms_eval.api.model import lmms  # noqa: E402
from lmms_eval.evaluator import simple_evaluate  # noqa: E402
from lmms_eval.tasks import TaskManager  # noqa: E402

from model.eval.prepare import TASKS_DIR  # noqa: E402
from model.eval.tasks import utils  # noqa: E402

TASKS = ["dfew", "mafw", "humanvbench", "asr", "dfec", "vispeak"]


def _from_label(task: str, doc: dict) -> str:
    if task in ("dfew", "mafw"):
        return f"The person looks {doc['label']}."
    if task == "humanvbench":
        letter = string.ascii_uppercase[doc["candidates"].index(doc["answer"])]
        return f"({letter}) {doc['answer']}"
    if task == "asr":
        return doc["transcript"].lower() + "."
    if task == "dfec":
        return doc["captions"][0]
    if task == "vispeak":
        return "Yes." if doc["start"] <= doc["t"] else "No."
    raise KeyError(task)


def _by_rule(task: str, doc: dict) -> str:
    """Always "neutral" (emotion), always B (choice), "yes" from the first poll on (ViSpeak)."""
    return {"dfew": "neutral", "mafw": "neutral", "humanvbench": "B", "vispeak": "yes"}[task]


class Answering(lmms):
    """Answers each request with `rule(task, doc)`; checks that the task's media exist."""

    def __init__(self, rule):
        super().__init__()
        self.rule = rule

    def generate_until(self, requests):
        answers = []
        for request in requests:
            _, _, doc_to_visual, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            for visual in doc_to_visual(doc):
                media = visual if isinstance(visual, str) else visual.get("video") or visual["path"]
                assert Path(media).is_file(), media
            answers.append(self.rule(task, doc))
        return answers

    def loglikelihood(self, requests):
        raise NotImplementedError

    def generate_until_multi_round(self, requests):
        return self.generate_until(requests)


def _evaluate(rule, tasks):
    manager = TaskManager("WARNING", include_path=str(TASKS_DIR))
    return simple_evaluate(
        model=Answering(rule), tasks=tasks, task_manager=manager, log_samples=True, batch_size=1
    )


def _metric(out, task, name):
    return out["results"][task][f"{name},none"]


@pytest.fixture(scope="module")
def perfect():
    return _evaluate(_from_label, TASKS)


def test_a_model_answering_from_the_labels_scores_perfectly_on_every_task(perfect):
    for task in ("dfew", "mafw"):
        assert _metric(perfect, task, "uar") == _metric(perfect, task, "war") == 1.0
        assert _metric(perfect, task, "invalid_rate") == 0.0
    assert _metric(perfect, "humanvbench", "accuracy") == 1.0
    assert _metric(perfect, "asr", "wer") == 0.0  # case and punctuation normalized away
    assert _metric(perfect, "dfec", "rouge_l") == pytest.approx(1.0)
    assert _metric(perfect, "vispeak", "on_time") == 1.0
    assert _metric(perfect, "vispeak", "missed") == 0.0


def test_every_score_is_recomputed_from_the_logged_samples(perfect):
    aggregate = {
        ("dfew", "uar"): utils.emotion_uar, ("mafw", "war"): utils.emotion_war,
        ("humanvbench", "accuracy"): utils.choice_accuracy, ("asr", "wer"): utils.asr_wer,
        ("dfec", "cider"): utils.caption_cider, ("vispeak", "on_time"): utils.vispeak_on_time,
    }  # fmt: skip
    for (task, name), fn in aggregate.items():
        logged = perfect["samples"][task]
        assert all("target" in s and s[name]["prediction"] for s in logged)
        assert fn([s[name] for s in logged]) == pytest.approx(_metric(perfect, task, name))


def test_a_fixed_rule_scores_what_is_worked_out_by_hand():
    out = _evaluate(_by_rule, ["dfew", "humanvbench", "vispeak"])
    # Labels happy x2, neutral x2, surprise x1, all answered neutral: recalls 0, 1, 0.
    assert _metric(out, "dfew", "uar") == pytest.approx(1 / 3)
    assert _metric(out, "dfew", "war") == pytest.approx(2 / 5)
    # The release's UAR sees the same classes here (no answer outside the list).
    assert _metric(out, "dfew", "release_uar") == pytest.approx(1 / 3)
    # Correct options: A, B, B, B (action_sequence, fine_grained, count, unexpected).
    assert _metric(out, "humanvbench", "accuracy") == pytest.approx(3 / 4)
    # "yes" at the first poll, t = 1 s, before either event starts (1.2 s): early, not on time.
    assert _metric(out, "vispeak", "on_time") == 0.0
    assert _metric(out, "vispeak", "missed") == 0.0


def test_an_emotion_word_of_the_other_dataset_names_no_class():
    """MAFW's "anxiety" is no DFEW class: on DFEW it is an invalid answer, not a wrong one."""
    items = [utils.emotion_results({"dataset": "dfew", "label": "happy"}, [a])["uar"]
             for a in ("anxiety", "happiness")]  # fmt: skip
    assert [i["parsed"] for i in items] == [None, "happy"]
    assert utils.emotion_invalid_rate(items) == 0.5 and utils.emotion_war(items) == 0.5
