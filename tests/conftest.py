"""Shared fixtures. Helpers that tests import live in helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import VIDEOS

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def videos() -> Path:
    return VIDEOS


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """The tiny random-weight Qwen2-VL and Qwen2, built once per test session."""
    from curation.tiny_models import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny_models"))
