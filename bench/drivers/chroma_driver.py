"""Chroma embedded (`PersistentClient`), cosine space, its sentence-transformers function.

The function is Chroma's own, with the job's batch size passed to `encode` (it has no setting for
it: Chroma would encode 32 at a time), so every system encodes in batches of the same size.
"""

from collections.abc import Iterator
from typing import Any

import driver
import numpy as np
from chromadb import PersistentClient
from chromadb.config import Settings
from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction


class BatchedFunction(SentenceTransformerEmbeddingFunction):
    batch_size = 32

    def __call__(self, input: Any) -> Any:
        vectors = self._model.encode(
            list(input),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize_embeddings,
        )
        return [np.asarray(vector, dtype=np.float32) for vector in vectors]


class Chroma(driver.System):
    packages = ("chromadb", "sentence-transformers", "torch")

    def __init__(self, job: driver.Job) -> None:
        function = BatchedFunction(model_name=job["model"], device="cpu")
        function.batch_size = job["batch_size"]
        client = PersistentClient(
            path=job["workdir"], settings=Settings(anonymized_telemetry=False)
        )
        self.collection = client.get_or_create_collection(
            "scifact", embedding_function=function, configuration={"hnsw": {"space": "cosine"}}
        )

    def ingest(self, ids: list[str], texts: list[str]) -> None:
        self.collection.add(ids=ids, documents=texts)

    def finish(self) -> None:
        """Each `add` is already persisted."""

    def search(self, text: str, top_k: int) -> list[str]:
        return self.collection.query(query_texts=[text], n_results=top_k)["ids"][0]

    def settings(self) -> Iterator[str]:
        yield "defaults: HNSW, cosine space"


if __name__ == "__main__":
    driver.main(Chroma)
