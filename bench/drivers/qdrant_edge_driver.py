"""Qdrant Edge (`qdrant-edge-py`), Qdrant's embedded engine, with scalar (int8) quantization.

Unlike the client's local mode, Edge runs Qdrant's own segment engine in process, and it quantizes.
Qdrant stores the vectors the client gives it, so documents and queries are encoded by
sentence-transformers (bench/drivers/sentence_encoder.py). One shard with cosine distance and
`ScalarQuantizationConfig(Int8)` (Qdrant's documented int8 quantization, default quantile); points
(sequential integer ids, the document id and text as payload) go in by `upsert_points` per chunk.
Qdrant builds quantized vectors (and HNSW) only when its optimizer turns the appendable segment
into an indexed one, by default past 10,000 KB of vectors (about 6,500 of 384 floats), so the
indexing threshold is set to 1 KB and `optimize()` runs in `finish` (counted as ingest): without
that a SciFact-sized shard is never quantized. Searched (`query` with `Query.Nearest`, limit 10)
three ways without re-encoding: Qdrant's default search parameters (quantized scores, the top k
re-scored with the original vectors), then quantized scores alone (`rescore=False`), then exact
(`exact=True`: a scan of the float32 vectors).
"""

import json
from collections.abc import Iterator
from pathlib import Path

import driver
from qdrant_edge import (
    Distance,
    EdgeConfig,
    EdgeOptimizersConfig,
    EdgeShard,
    EdgeVectorParams,
    Point,
    QuantizationSearchParams,
    Query,
    QueryRequest,
    ScalarQuantizationConfig,
    ScalarType,
    SearchParams,
    UpdateOperation,
)
from sentence_encoder import Encoder


class QdrantEdge(driver.System):
    packages = ("qdrant-edge-py", "sentence-transformers", "torch")

    def __init__(self, job: driver.Job) -> None:
        self.encoder = Encoder.from_job(job)
        self.workdir = Path(job["workdir"])
        config = EdgeConfig(
            vectors=EdgeVectorParams(size=self.encoder.dimension, distance=Distance.Cosine),
            quantization_config=ScalarQuantizationConfig(type=ScalarType.Int8),
            optimizers=EdgeOptimizersConfig(indexing_threshold=1),
        )
        self.shard = EdgeShard.create(str(self.workdir), config)
        self.count = 0
        self.params: SearchParams | None = None

    def ingest(self, ids: list[str], texts: list[str]) -> None:
        vectors = self.encoder.encode(texts)
        points = [
            Point(id=self.count + n, vector=v.tolist(), payload={"id": i, "text": t})
            for n, (i, t, v) in enumerate(zip(ids, texts, vectors, strict=True))
        ]
        self.count += len(points)
        self.shard.update(UpdateOperation.upsert_points(points))

    def finish(self) -> None:
        self.shard.optimize()  # builds the indexed segment: HNSW and the int8 codes
        self.shard.flush()

    def search(self, text: str, top_k: int) -> list[str]:
        request = QueryRequest(
            limit=top_k,
            query=Query.Nearest(self.encoder.encode([text])[0].tolist()),
            params=self.params,
            with_payload=["id"],
        )
        return [hit.payload["id"] for hit in self.shard.query(request)]

    def settings(self) -> Iterator[str]:
        info = self.shard.info()
        quantized = f"SQ int8: 1 B/dim = {self.encoder.dimension} B/vector codes"
        yield (
            f"{quantized} ({info.indexed_vectors_count} of {info.points_count} points indexed; "
            f"{self.index_search()}), default search: the top k re-scored by the float32 "
            f"vectors; cosine; {self.encoder.describe()}"
        )
        self.params = SearchParams(quantization=QuantizationSearchParams(rescore=False))
        yield f"{quantized}, rescore off: quantized scores only"
        self.params = SearchParams(exact=True)
        yield "exact=True: a scan of the float32 vectors"

    def index_search(self) -> str:
        """How Qdrant searches the indexed segment: HNSW, or a full scan below its threshold."""
        configs = [json.loads(f.read_text()) for f in self.workdir.rglob("hnsw_config.json")]
        if not configs:
            return "no indexed segment"
        hnsw = configs[0]
        if hnsw["indexed_vector_count"] < hnsw["full_scan_threshold"]:
            return (
                f"HNSW built, but under its full_scan_threshold of {hnsw['full_scan_threshold']:,}"
                " vectors Qdrant scans the codes"
            )
        return f"HNSW m {hnsw['m']}, ef_construct {hnsw['ef_construct']} over the codes"

    def inner(self) -> dict[str, float]:
        """Bytes per point of the quantized vectors' files (quantized.data) Qdrant wrote."""
        if self.params is not None and self.params.exact:
            return {}
        files = self.workdir.rglob("quantized.data")
        return {"index_bytes_per_vector": sum(f.stat().st_size for f in files) / self.count}


if __name__ == "__main__":
    driver.main(QdrantEdge)
