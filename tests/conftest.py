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
