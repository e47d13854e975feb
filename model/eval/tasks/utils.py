"""What the project's lmms-eval tasks (the YAML files beside this one) call: the prompt and the
media of a document, and its scoring. Each `*_results` keeps, per sample, what the metric needs
(target and prediction), so lmms-eval's `--log_samples` file holds every number behind a score
and `model.eval.summary` can recompute it; the aggregations are `model.eval.metrics`.

Documents are the normalized rows `model.eval.layouts` reads from the datasets' own layouts.
A relative media path is relative to the project's folder (the shipped sets' documents).
"""

from __future__ import annotations

import re
import string
from collections import defaultdict
from pathlib import Path
from typing import Any

from model.eval import metrics
from model.eval.labels import CLASSES, EMOTION_ALIASES, EMOTION_PROMPT, VISPEAK_PROMPTS
from model.eval.prepare import PROJECT


def _media(path: str) -> str:
    return path if Path(path).is_absolute() or "://" in path else str(PROJECT / path)


def doc_to_video(doc: dict[str, Any]) -> list[str]:
    return [_media(doc["video"])]


# -- emotion (DFEW, MAFW) ------------------------------------------------------------------
def aliases(dataset: str) -> dict[str, str]:
    """The other word forms that name one of the dataset's own classes (MAFW's "anxiety" is no
    DFEW answer: it names no DFEW class, so it counts as invalid there)."""
    return {k: v for k, v in EMOTION_ALIASES.items() if v in CLASSES[dataset]}


def emotion_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict | None = None) -> str:
    """The release's prompt: its question, then its option list for the dataset."""
    return EMOTION_PROMPT + " ,".join(CLASSES[doc["dataset"]])


def emotion_results(doc: dict[str, Any], results: list[str]) -> dict[str, dict]:
    prediction = results[0] if results else ""
    item = {"dataset": doc["dataset"], "target": doc["label"], "prediction": prediction}
    parsed = metrics.parse_label(prediction, CLASSES[doc["dataset"]], aliases(doc["dataset"]))
    item["parsed"] = parsed
    return {name: item for name in ("uar", "war", "invalid_rate", "release_uar")}


def _classification(items: list[dict]) -> dict[str, float]:
    datasets = {i["dataset"] for i in items}
    if len(datasets) != 1:
        raise ValueError(f"one dataset per task, not {sorted(datasets)}")
    (dataset,) = datasets
    return metrics.classification(
        [i["prediction"] for i in items],
        [i["target"] for i in items],
        CLASSES[dataset],
        aliases(dataset),
    )


def emotion_uar(items: list[dict]) -> float:
    return _classification(items)["uar"]


def emotion_war(items: list[dict]) -> float:
    return _classification(items)["war"]


def emotion_invalid_rate(items: list[dict]) -> float:
    return _classification(items)["invalid_rate"]


def emotion_release_uar(items: list[dict]) -> float:
    """The release's UAR on the same answers (the answer's word as it is), to show the gap."""
    return metrics.release_uar([i["prediction"] for i in items], [i["target"] for i in items])


# -- multiple choice (MVBench layout) -------------------------------------------------------
def choice_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict | None = None) -> str:
    options = "\n".join(
        f"({string.ascii_uppercase[i]}) {c}" for i, c in enumerate(doc["candidates"])
    )
    return f"Question: {doc['question']}\nOptions:\n{options}\nOnly give the best option."


def choice_results(doc: dict[str, Any], results: list[str]) -> dict[str, dict]:
    prediction = results[0] if results else ""
    options = len(doc["candidates"])
    target = string.ascii_uppercase[doc["candidates"].index(doc["answer"])]
    item = {
        "category": doc.get("category", ""),
        "target": target,
        "prediction": prediction,
        "parsed": metrics.parse_choice(prediction, options),
        "options": options,
    }
    return {"accuracy": item, "invalid_rate": item}


def choice_accuracy(items: list[dict]) -> float:
    return sum(i["parsed"] == i["target"] for i in items) / len(items)


def choice_invalid_rate(items: list[dict]) -> float:
    return sum(i["parsed"] is None for i in items) / len(items)


# -- speech recognition ---------------------------------------------------------------------
ASR_PROMPT = "Please recognize the speech and only output the recognized content:"


def doc_to_audio(doc: dict[str, Any]) -> list[dict[str, str]]:
    return [{"path": _media(doc["audio"])}]


def asr_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict | None = None) -> str:
    return ASR_PROMPT


def asr_results(doc: dict[str, Any], results: list[str]) -> dict[str, dict]:
    return {"wer": {"target": doc["transcript"], "prediction": results[0] if results else ""}}


def asr_wer(items: list[dict]) -> float:
    return metrics.wer([i["prediction"] for i in items], [i["target"] for i in items])["wer"]


# -- captions (DFEC) and the run's own validation pairs -------------------------------------
DFEC_PROMPT = (
    "Please provide a detailed description of the facial appearance attributes and expression "
    "changes of the character in the video"
)


def dfec_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict | None = None) -> str:
    return DFEC_PROMPT


def caption_results(doc: dict[str, Any], results: list[str]) -> dict[str, dict]:
    item = {
        "group": doc.get("branch", ""),
        "target": doc["captions"],
        "prediction": results[0] if results else "",
    }
    return {"cider": item, "rouge_l": item}


def _captions(items: list[dict]) -> dict[str, float]:
    return metrics.caption_scores([i["prediction"] for i in items], [i["target"] for i in items])


def caption_cider(items: list[dict]) -> float:
    return _captions(items)["cider"]


def caption_rouge_l(items: list[dict]) -> float:
    return _captions(items)["rouge_l"]


def instruction_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict | None = None) -> str:
    return doc["instruction"]


# -- ViSpeak-Bench: polled once a second until a reply, as its proactive protocol ------------
def vispeak_video(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The video as shown up to the poll's moment."""
    return [
        {"video": _media(doc["video"]), "video_start": doc["video_start"], "video_end": doc["t"]}
    ]


def vispeak_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict | None = None) -> str:
    return VISPEAK_PROMPTS[doc["subtask"]]


_YES = re.compile(r"^\W*yes\b", re.IGNORECASE)


def vispeak_results(doc: dict[str, Any], results: list[str]) -> dict[str, dict]:
    prediction = results[0] if results else ""
    item = {
        "event": doc["event"],
        "t": doc["t"],
        "start": doc["start"],
        "end": doc["end"],
        "prediction": prediction,
        "reply": bool(_YES.match(prediction)),
    }
    return {"on_time": item, "missed": item}


def _first_replies(items: list[dict]) -> dict[str, tuple[float | None, dict]]:
    """Per event, the first poll answered yes (None when none was)."""
    polls: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        polls[item["event"]].append(item)
    first = {}
    for event, rows in polls.items():
        replies = sorted(r["t"] for r in rows if r["reply"])
        first[event] = (replies[0] if replies else None, rows[0])
    return first


def vispeak_on_time(items: list[dict]) -> float:
    first = _first_replies(items)
    hits = [t is not None and metrics.on_time(t, e["start"], e["end"]) for t, e in first.values()]
    return sum(hits) / len(hits)


def vispeak_missed(items: list[dict]) -> float:
    first = _first_replies(items)
    return sum(t is None for t, _ in first.values()) / len(first)
