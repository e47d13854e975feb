"""The validation split of `make instructions`: whole sources held out, never single clips.

Clips cut from one source share its people, room and light; a clip of a source in training
and another in validation would measure memory, not learning. So a source is in validation
when its file name hashes below `val_share`, and every pair, transcript and export of its
clips goes with it. By file name, not by path: the same files split the same way on any
machine and under any mount, and a re-run splits as the first run did. (Sources that share a
file name in different folders share a split.) A run of a few dozen sources may hold out none.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath


def source_position(path: str) -> float:
    """Where a source falls in [0, 1): the first 8 bytes of its file name's SHA-256."""
    name = PurePosixPath(path.replace("\\", "/")).name
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def val_sources(paths: dict[str, str], share: float) -> set[str]:
    """The ids of the sources held out for validation, from {source_id: path}."""
    return {sid for sid, path in paths.items() if source_position(path) < share}
