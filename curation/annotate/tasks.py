"""What people label, and which clips they get.

Three tasks, as the HumanOmni paper's hand-labelled fine-tuning data:
- `emotion`: one of the release's 11 words (DFEW's 7 and MAFW's 4 more);
- `face`: a description of the face and how its expression changes;
- `speech`: whether the person the speech pairs name is the one speaking, and the transcript.

Each task shows the clip with its sound and carries the pipeline's own answer as a prediction
(the model and run it came from), so an annotator corrects instead of typing from nothing.
Clips are drawn deterministically from a seed, spread over strata (the predicted emotion and
the framing, then sources in turn), never twice for one task. Which of them two annotators get
is Label Studio's choice (the project's overlap settings).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any
from xml.sax.saxutils import quoteattr

from curation.core.fields import RELEASE_EMOTIONS, TO_RELEASE

TASKS = ("emotion", "face", "speech")
SPEAKS = ("the named person speaks", "someone else speaks", "no one speaks")

_VIDEO = '<Video name="video" value="$video"/>'
LABEL_CONFIGS = {
    "emotion": (
        f'<View>{_VIDEO}<Header value="Which emotion does the person show most clearly?"/>'
        '<Choices name="emotion" toName="video" choice="single" required="true" showInline="true">'
        + "".join(f"<Choice value={quoteattr(w)}/>" for w in RELEASE_EMOTIONS)
        + "</Choices></View>"
    ),
    "face": (
        f'<View>{_VIDEO}<Header value="Describe the face: its appearance, and how the expression '
        'changes from the start of the clip to its end."/>'
        '<TextArea name="description" toName="video" rows="4" editable="true" '
        'maxSubmissions="1" required="true"/></View>'
    ),
    "speech": (
        f'<View>{_VIDEO}<Header value="Who speaks? The pairs name the speaker as:"/>'
        '<Text name="speaker" value="$speaker"/>'
        '<Choices name="speaks" toName="video" choice="single" required="true">'
        + "".join(f"<Choice value={quoteattr(c)}/>" for c in SPEAKS)
        + '</Choices><Header value="What does the speaker say? (the words as spoken)"/>'
        '<TextArea name="transcript" toName="video" rows="3" editable="true" maxSubmissions="1"/>'
        "</View>"
    ),
}


def predicted_emotion(clip: dict[str, Any]) -> str | None:
    """The pipeline's emotion for a clip, in the release's words (None: not described)."""
    emotion = (((clip.get("fields") or {}).get("face") or {}).get("emotion") or "").lower()
    emotion = TO_RELEASE.get(emotion, emotion)
    return emotion if emotion in RELEASE_EMOTIONS else None


def _stable(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode(), usedforsecurity=False).hexdigest()


def sample(
    clips: Iterable[dict[str, Any]], task: str, n: int, seed: int, sent: set[str]
) -> list[dict[str, Any]]:
    """Up to `n` clips not in `sent`: strata (predicted emotion, framing) taken in turn, and in
    each the clip from the least-used source first, ties by a hash of the seed and the clip."""
    strata: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for clip in clips:
        if clip["clip_id"] not in sent:
            key = (predicted_emotion(clip) or "", clip.get("framing") or "")
            strata[key].append(clip)
    for members in strata.values():
        members.sort(key=lambda c: _stable(str(seed), task, c["clip_id"]))
    order = sorted(strata, key=lambda k: _stable(str(seed), task, *k))
    used: dict[str, int] = defaultdict(int)
    picked: list[dict[str, Any]] = []
    while len(picked) < n and any(strata[k] for k in order):
        for key in order:
            members = strata[key]
            if not members or len(picked) >= n:
                continue
            best = min(
                range(len(members)), key=lambda i: (used[members[i].get("source_id", "")], i)
            )
            clip = members.pop(best)
            used[clip.get("source_id", "")] += 1
            picked.append(clip)
    return picked


def prediction(clip: dict[str, Any], task: str, source: str) -> list[dict[str, Any]]:
    """The pipeline's answer as a Label Studio prediction (empty when it has none)."""
    if task == "emotion":
        emotion = predicted_emotion(clip)
        result = [_choice("emotion", emotion)] if emotion else []
    elif task == "face":
        face = (clip.get("fields") or {}).get("face") or {}
        text = " ".join(v.strip() for k in ("appearance", "expression") if (v := face.get(k) or ""))
        result = [_text("description", text)] if text else []
    else:
        result = [_choice("speaks", SPEAKS[0])]
        if (clip.get("transcript") or "").strip():
            result.append(_text("transcript", clip["transcript"].strip()))
    return [{"model_version": source, "result": result}] if result else []


def _choice(name: str, value: str) -> dict[str, Any]:
    return {"from_name": name, "to_name": "video", "type": "choices", "value": {"choices": [value]}}


def _text(name: str, value: str) -> dict[str, Any]:
    return {"from_name": name, "to_name": "video", "type": "textarea", "value": {"text": [value]}}


def to_task(
    clip: dict[str, Any],
    task: str,
    video_url: str,
    source: str,
    speaker: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    """One Label Studio task for a clip."""
    predictions = prediction(clip, task, source)
    # The pipeline's answer also travels in the task's data: Label Studio's export names a
    # task's predictions by id only.
    answer = {r["from_name"]: (r["value"].get("choices") or r["value"].get("text"))[0]
              for p in predictions for r in p["result"]}  # fmt: skip
    data = {"video": video_url, "clip_id": clip["clip_id"], "task": task,
            "pipeline": answer, "pipeline_source": source}  # fmt: skip
    if task == "speech":
        data["speaker"] = speaker(clip.get("fields"))
    return {"data": data, "predictions": predictions}
