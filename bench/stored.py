"""Collections filled from cached raw vectors: a benchmark of what a collection serves need not
encode its documents again."""

from collections.abc import Sequence

import numpy as np

from index import Collection, Document

CHUNK = 10_000
"""Documents a write: one SQLite transaction each, as an ingest job commits in chunks."""


def store(
    collection: Collection, ids: Sequence[str], texts: Sequence[str], vectors: np.ndarray
) -> None:
    """Add the documents with their raw vectors, in chunks and without fitting (fit after)."""
    for start in range(0, len(ids), CHUNK):
        chunk = slice(start, start + CHUNK)
        documents = [Document(t, id=i) for i, t in zip(ids[chunk], texts[chunk], strict=True)]
        collection.add_vectors(documents, vectors[chunk], fit=False)
