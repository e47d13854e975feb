"""Fixtures of the runner tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ray_sources(tmp_path_factory, videos) -> Path:
    """Two signers (kept to the end), nature footage with several scenes (re-cut into pieces,
    then rejected: no human) and a counter video (no human)."""
    listing = tmp_path_factory.mktemp("ray_sources") / "list.txt"
    names = ["intel_asl_book.mkv", "intel_asl_again.mkv", "psd_testvideo.mp4", "psd_counter.mp4"]
    listing.write_text("\n".join(str(videos / n) for n in names))
    return listing


@pytest.fixture(scope="session")
def ray_signers(tmp_path_factory, videos) -> Path:
    """The two signers alone: both kept to the end, for tests about where the models run."""
    listing = tmp_path_factory.mktemp("ray_signers") / "list.txt"
    listing.write_text(
        "\n".join(str(videos / n) for n in ("intel_asl_book.mkv", "intel_asl_again.mkv"))
    )
    return listing
