"""Deterministic identifiers: the same source and frame range always get the same id."""

from __future__ import annotations

import hashlib


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]


def source_id(path: str) -> str:
    """Id of a source: a hash of its absolute path (or URI) as listed."""
    return _digest(path)


def clip_id(source: str, start_frame: int, end_frame: int) -> str:
    """Id of a clip: a hash of its source id and frame range [start_frame, end_frame)."""
    return _digest(f"{source}:{start_frame}-{end_frame}")
