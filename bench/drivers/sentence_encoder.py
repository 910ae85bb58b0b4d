"""The model as a user of a store that takes vectors runs it: sentence-transformers on torch.

LanceDB and Qdrant store and search vectors the client hands them, so their drivers encode with
sentence-transformers' documented default path: `SentenceTransformer(path)` on the CPU,
`encode(texts, batch_size=32, normalize_embeddings=True)`, the model's own max_seq_length (256 for
all-MiniLM-L6-v2). The job gives the model's path (the bundled model, offline), as for txtai.
"""

from importlib import metadata

import numpy as np
from sentence_transformers import SentenceTransformer

BATCH = 32


class Encoder:
    """Texts to unit float32 vectors, batch 32, with the model's max_seq_length."""

    def __init__(self, path: str) -> None:
        self.model = SentenceTransformer(path, device="cpu")
        self.dimension = int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(
            texts, batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True
        ).astype(np.float32, copy=False)

    def describe(self) -> str:
        """What encodes, as the settings lines say it."""
        return (
            f"sentence-transformers {metadata.version('sentence-transformers')} on torch CPU, "
            f"batch {BATCH}, max_seq_length {self.model.max_seq_length}, normalized"
        )
