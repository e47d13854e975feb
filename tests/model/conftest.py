"""Shared fixtures of the model tests: the tiny random-weight components, built once."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    from model.tiny import ensure_tiny_components

    return ensure_tiny_components(tmp_path_factory.mktemp("omni") / "tiny")


@pytest.fixture(scope="session")
def tiny_config(tiny_dir):
    from model.sizes import omni_tiny

    return omni_tiny(tiny_dir)
