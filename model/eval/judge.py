"""DFEC's four judged scores (0-5): an LLM compares each predicted caption with the reference,
once per dimension, through any of the project's model backends (a served model over HTTP,
vLLM, transformers), with the score constrained to an integer 0-5 by a JSON schema.

The backend is a YAML file with the fields of any stage's `backend:` section, e.g.

    kind: openai
    model: Qwen2.5-72B-Instruct
    base_url: http://judge-host:8000/v1

Every judgement (sample, dimension, score) is written beside the summary, so each mean can be
recomputed; a judgement the backend could not give is left out of its mean and counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from curation.backends import BackendConfig, Prompt, make_backend

DIMENSIONS = {
    "correctness": "Is the information in the prediction correct, given the reference?",
    "detail": "Does the prediction cover the reference's details (appearance and expression)?",
    "context": "Does the prediction fit the reference's overall context and meaning?",
    "temporal": "Does the prediction describe how the expression changes over time as the "
    "reference does?",
}
SYSTEM = (
    "You evaluate a video model's description of a person's face against a reference written "
    "by a person. Answer with a JSON object whose `score` is an integer from 0 (not at all) "
    "to 5 (completely)."
)
SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 5}},
    "required": ["score"],
}


def load_judge(path: Path) -> BackendConfig:
    """The judge's backend from a YAML file; a wrong field names itself."""
    try:
        return BackendConfig.model_validate(yaml.safe_load(path.read_text()) or {})
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"judge config {path}: {exc}") from None
    except ValidationError as exc:  # without the values: a misplaced key may hold a secret
        wrong = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                          for e in exc.errors(include_input=False))  # fmt: skip
        raise ValueError(f"judge config {path}: {wrong}") from None


def _score(text: str) -> int | None:
    try:
        value = json.loads(text).get("score")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and 0 <= value <= 5 else None


def judge(
    config: BackendConfig, samples: list[dict[str, Any]], out: Path, device: str = "cpu"
) -> dict[str, float]:
    """Mean score per dimension over `samples` (each with `prediction` and `target`, the
    reference captions); judgements written to `out` (JSON lines)."""
    prompts, keys = [], []
    for i, sample in enumerate(samples):
        reference = " / ".join(sample["target"])
        for name, question in DIMENSIONS.items():
            text = (f"Reference: {reference}\nPrediction: {sample['prediction'] or '(nothing)'}\n"
                    f"{question}")  # fmt: skip
            prompts.append(Prompt(text=text, system=SYSTEM, json_schema=SCHEMA, key=f"{i}-{name}"))
            keys.append((i, name))
    backend = make_backend(config)
    backend.setup(device)
    try:
        generations = backend.generate(prompts)
    finally:
        backend.close()
    rows = [{"sample": i, "dimension": name, "score": _score(g.text), "error": g.error}
            for (i, name), g in zip(keys, generations, strict=True)]  # fmt: skip
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return judged_means(rows)


def judged_means(rows: list[dict[str, Any]]) -> dict[str, float]:
    """`judge_<dimension>`: the mean of the scores given; `judge_failed`: the share not given."""
    means = {}
    for name in DIMENSIONS:
        given = [r["score"] for r in rows if r["dimension"] == name and r["score"] is not None]
        means[f"judge_{name}"] = sum(given) / len(given) if given else float("nan")
    means["judge_failed"] = sum(r["score"] is None for r in rows) / max(1, len(rows))
    return means
