"""Qdrant's Python client in local mode (`QdrantClient(path=workdir)`), exact search.

Local mode is qdrant-client's embedded engine for development: it keeps the points in memory,
persists them to SQLite, stores no quantization and searches by brute force, whatever the
collection's configuration says. Qdrant stores the vectors the client gives it, so documents and
queries are encoded by sentence-transformers (bench/drivers/sentence_encoder.py). One collection
with cosine distance and no other configuration; points (sequential integer ids, the document id
and text as payload) go in by `upsert` in batches of 256; a search is `query_points(vector,
limit=10)`.
"""

from collections.abc import Iterator

import driver
from qdrant_client import QdrantClient, models
from sentence_encoder import Encoder

UPSERT = 256
COLLECTION = "scifact"


class Qdrant(driver.System):
    packages = ("qdrant-client", "sentence-transformers", "torch")

    def __init__(self, job: driver.Job) -> None:
        self.encoder = Encoder.from_job(job)
        self.client = QdrantClient(path=job["workdir"])
        self.client.create_collection(
            COLLECTION,
            vectors_config=models.VectorParams(
                size=self.encoder.dimension, distance=models.Distance.COSINE
            ),
        )
        self.count = 0

    def ingest(self, ids: list[str], texts: list[str]) -> None:
        vectors = self.encoder.encode(texts)
        points = [
            models.PointStruct(id=self.count + n, vector=v.tolist(), payload={"id": i, "text": t})
            for n, (i, t, v) in enumerate(zip(ids, texts, vectors, strict=True))
        ]
        self.count += len(points)
        for begin in range(0, len(points), UPSERT):
            self.client.upsert(COLLECTION, points[begin : begin + UPSERT])

    def finish(self) -> None:
        """Each `upsert` is already written to the local SQLite file."""

    def search(self, text: str, top_k: int) -> list[str]:
        hits = self.client.query_points(
            COLLECTION, query=self.encoder.encode([text])[0], limit=top_k, with_payload=["id"]
        ).points
        return [hit.payload["id"] for hit in hits]

    def settings(self) -> Iterator[str]:
        yield (
            "local mode: cosine, brute force over float32 (exact; no quantization in local "
            f"mode); {self.encoder.describe()}"
        )


if __name__ == "__main__":
    driver.main(Qdrant)
