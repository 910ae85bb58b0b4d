"""The model as a user of a store that takes vectors runs it: sentence-transformers on torch.

LanceDB and Qdrant store and search vectors the client hands them, so their drivers encode with
sentence-transformers' documented default path: `SentenceTransformer(path)` on the CPU,
`encode(texts, batch_size=32, normalize_embeddings=True)`, the model's own max_seq_length (256 for
all-MiniLM-L6-v2). The job gives the model's path (the bundled model, offline), as for txtai.

With `--encoder shared` every system encodes through this class (txtai through its `external`
vectors, Chroma through an embedding function around it), with the torch threads the job names,
so that comparison differs only in what each system does around the same encoder.
"""

from importlib import metadata
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

BATCH = 32


class Encoder:
    """Texts to unit float32 vectors, batch 32 unless the job says, the model's max_seq_length."""

    def __init__(self, path: str, threads: int | None = None, batch: int = BATCH) -> None:
        if threads is not None:
            torch.set_num_threads(threads)
        self.batch = batch
        self.model = SentenceTransformer(path, device="cpu")
        self.dimension = int(self.model.get_embedding_dimension())

    @classmethod
    def from_job(cls, job: dict[str, Any]) -> "Encoder":
        """The encoder a job asks for: the model's path, and the shared encoder's threads."""
        return cls(job["model"], job.get("encoder_threads"), job.get("encoder_batch", BATCH))

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(
            texts, batch_size=self.batch, normalize_embeddings=True, convert_to_numpy=True
        ).astype(np.float32, copy=False)

    def describe(self) -> str:
        """What encodes, as the settings lines say it."""
        return (
            f"sentence-transformers {metadata.version('sentence-transformers')} on torch CPU "
            f"({torch.get_num_threads()} threads), batch {self.batch}, max_seq_length "
            f"{self.model.max_seq_length}, normalized"
        )
