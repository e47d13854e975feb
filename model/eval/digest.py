"""A checkpoint's digest: what identifies the model a folder holds, cheaply (no weight is read)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def checkpoint_digest(folder: str | Path) -> str:
    """16 hex digits over the name, size and modification time of every file in the folder.
    A retrained or re-converted checkpoint at the same path gets a new digest."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"checkpoint folder not found: {root}")
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]
