"""The evaluation metrics against numbers worked out by hand (model/eval/metrics.py)."""

from __future__ import annotations

import pytest

from model.eval import metrics

DFEW = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]


def test_answers_from_the_label_score_one():
    targets = ["happy", "sad", "sad", "fear", "neutral"]
    answers = [f"The person looks {t}." for t in targets]
    assert metrics.classification(answers, targets, DFEW) | {"samples": 0} == {
        "uar": 1.0, "war": 1.0, "invalid_rate": 0.0, "samples": 0}  # fmt: skip


def test_a_confusion_matrix_worked_by_hand():
    # happy: 4 samples, 3 right; sad: 2 samples, 1 right; fear: 1 sample, 0 right.
    targets = ["happy"] * 4 + ["sad"] * 2 + ["fear"]
    answers = ["happy", "happy", "happy", "sad", "sad", "neutral", "surprise"]
    got = metrics.classification(answers, targets, DFEW)
    assert got["uar"] == pytest.approx((3 / 4 + 1 / 2 + 0 / 1) / 3)
    assert got["war"] == pytest.approx(4 / 7) and got["invalid_rate"] == 0.0


def test_an_answer_outside_the_list_is_wrong_not_a_new_class():
    # Two samples per class; the model answers one "fear" sample with "scared" (no class).
    targets = ["happy", "happy", "fear", "fear"]
    answers = ["happy", "happy", "fear", "scared"]
    fixed = metrics.classification(answers, targets, DFEW)
    assert fixed["uar"] == pytest.approx((1 + 1 / 2) / 2) and fixed["invalid_rate"] == 0.25
    # The release's UAR counts "scared" as a third class with recall 0: (1 + 1/2 + 0) / 3.
    assert metrics.release_uar(answers, targets) == pytest.approx((1 + 1 / 2 + 0) / 3)


def test_labels_are_parsed_as_whole_words_and_only_when_one_is_named():
    assert metrics.parse_label("Sad.", DFEW) == "sad"
    assert metrics.parse_label("The woman is clearly ANGRY", DFEW) == "angry"
    assert metrics.parse_label("saddened", DFEW) is None
    assert metrics.parse_label("happy or sad", DFEW) is None
    assert metrics.parse_label("surprised", DFEW) is None
    assert metrics.parse_label("surprised", DFEW, {"surprised": "surprise"}) == "surprise"
    assert metrics.parse_label("surprise, surprised", DFEW, {"surprised": "surprise"}) == "surprise"
    with pytest.raises(ValueError, match="outside the class list"):
        metrics.classification(["happy"], ["joy"], DFEW)


def test_multiple_choice_letters_and_unparseable_answers():
    answers = ["B", "(C) the man", "A. waves", "The answer is D.", "Answer: (b)", "I think (C)",
               "E", "none", "A man waves", "The answer is a man", "(b) waving"]  # fmt: skip
    assert [metrics.parse_choice(a, 4) for a in answers] == [
        "B", "C", "A", "D", "B", "C", None, None, None, None, "B"]  # fmt: skip
    got = metrics.multiple_choice(["B", "nothing fits", "C"], ["B", "B", "A"], 4)
    assert got["accuracy"] == pytest.approx(1 / 3) and got["invalid_rate"] == pytest.approx(1 / 3)


def test_word_error_rate_after_normalisation():
    # "Mr." and "mister", "it's" and "it is", case and punctuation are not errors; one word is.
    got = metrics.wer(["Hello Mr Smith, it's late."], ["hello mister smith it is very late"])
    assert got["wer"] == pytest.approx(1 / 7)


def test_caption_scores():
    refs = [["a man smiles at the camera"], ["a woman frowns and looks away"]]
    same = metrics.caption_scores(
        ["A man smiles at the camera.", "A woman frowns and looks away"], refs
    )
    assert same["rouge_l"] == pytest.approx(1.0) and same["cider"] > 5
    worse = metrics.caption_scores(["a dog runs", "a woman smiles"], refs)
    assert worse["cider"] < same["cider"] and worse["rouge_l"] < 1


def test_vispeaks_timing_rule():
    assert metrics.on_time(0.0, -1.0, 2.0) and metrics.on_time(4.0, 1.0, 2.0)
    assert not metrics.on_time(0.5, 1.0, 2.0) and not metrics.on_time(4.01, 1.0, 2.0)
