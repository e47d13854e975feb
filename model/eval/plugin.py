"""How lmms-eval finds the omni model: the `lmms_eval.models` entry point in pyproject.toml
names `manifests`, which lmms-eval's registry calls when it starts."""

from __future__ import annotations

MODEL_NAME = "humanomni_curate"


def manifests() -> list:
    from lmms_eval.models.registry_v2 import ModelManifest

    return [
        ModelManifest(model_id=MODEL_NAME, simple_class_path="model.eval.lmms_model.HumanOmniLmms")
    ]
