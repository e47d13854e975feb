"""Exports of a run for other systems' trainers (OmniHuman-1, ViSpeak), written by `make export`
(curation/engine/export.py runs them on a worker)."""
