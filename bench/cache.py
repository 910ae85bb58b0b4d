"""An on-disk cache of raw embeddings, so that re-running a benchmark does not re-encode text.

One .npy file per (model id, list of texts), named by the model and a SHA-256 of the texts in
order, with a .json beside it saying what it holds and how long encoding took. Delete the folder
(bench/.cache/ by default) to start afresh; it is never committed.
"""

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

DEFAULT_CACHE_DIR = Path(__file__).resolve().parent / ".cache"
log = logging.getLogger(__name__)


class TextEncoder(Protocol):
    """What the cache needs of an encoder (index.encoder.Encoder has it)."""

    @property
    def vectors_id(self) -> str: ...

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray: ...


def texts_key(model_id: str, texts: Sequence[str]) -> str:
    """A hex SHA-256 of the model id and every text, in order (length-prefixed, so unambiguous)."""
    digest = hashlib.sha256()
    for part in (model_id, *texts):
        data = part.encode("utf-8")
        digest.update(f"{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()


class EmbeddingCache:
    """Raw vectors of text lists, keyed by model id and the texts.

    Args:
        directory: where the files go (default bench/.cache/).
        enabled: False always encodes and stores nothing.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, enabled: bool = True):
        self.directory = Path(directory) if directory is not None else DEFAULT_CACHE_DIR
        self.enabled = enabled
        self.hits = 0
        self.misses = 0
        self.encode_seconds = 0.0
        """Seconds spent encoding in this process (cache misses only)."""

    def path(self, model_id: str, texts: Sequence[str]) -> Path:
        slug = re.sub(r"[^A-Za-z0-9]+", "_", model_id).strip("_")[-60:] or "model"
        return self.directory / f"{slug}-{texts_key(model_id, texts)[:24]}.npy"

    def encode(
        self, encoder: TextEncoder, texts: Sequence[str], label: str = "texts"
    ) -> np.ndarray:
        """Raw float32 vectors (n, d) of `texts`: from the cache, else encoded and stored."""
        texts = list(texts)
        path = self.path(encoder.vectors_id, texts)
        if self.enabled:
            vectors = _load(path, len(texts))
            if vectors is not None:
                self.hits += 1
                log.info("%s: %d vectors from the cache (%s)", label, len(texts), path.name)
                return vectors
        self.misses += 1
        log.info("%s: encoding %d texts with %s", label, len(texts), encoder.vectors_id)
        started = time.perf_counter()
        vectors = np.ascontiguousarray(encoder.encode(texts, progress=_progress()), np.float32)
        seconds = time.perf_counter() - started
        self.encode_seconds += seconds
        log.info(
            "%s: encoded %d texts in %.1f s (%.1f/s)",
            label,
            len(texts),
            seconds,
            len(texts) / max(seconds, 1e-9),
        )
        if self.enabled:
            _store(
                path,
                vectors,
                {
                    "model_id": encoder.vectors_id,
                    "label": label,
                    "n_texts": len(texts),
                    "dimension": int(vectors.shape[1]),
                    "encode_seconds": round(seconds, 3),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                },
            )
        return vectors


def _progress() -> bool:
    return log.isEnabledFor(logging.INFO) and os.isatty(2)


def _load(path: Path, n: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable cache file %s: %s", path, exc)
        return None
    if vectors.ndim != 2 or vectors.shape[0] != n or vectors.dtype != np.float32:
        log.warning("ignoring cache file %s: shape %s, expected %d rows", path, vectors.shape, n)
        return None
    return vectors


def _store(path: Path, vectors: np.ndarray, meta: dict) -> None:
    """Write atomically (temporary file, then rename), so a killed run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, write in (
        (path.with_suffix(".json"), lambda h: h.write(json.dumps(meta, indent=1).encode())),
        (path, lambda h: np.save(h, vectors, allow_pickle=False)),
    ):
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            temporary = Path(handle.name)
            try:
                write(handle)
            except BaseException:
                handle.close()
                temporary.unlink(missing_ok=True)
                raise
        os.replace(temporary, target)
