"""Chroma embedded (`PersistentClient`) on its defaults: no embedding function given, so Chroma's
`DefaultEmbeddingFunction` (ONNX all-MiniLM-L6-v2 on ONNX Runtime, batches of 32) encodes, and
the collection's default index (HNSW, L2 space) searches.

The model files it would download on first use are put in place by `bench peers --setup`
(bench/chroma_model.py) under the HOME this driver runs with; nothing else is changed.

With `--encoder shared` the collection gets an embedding function around the shared encoder
(bench/drivers/sentence_encoder.py) instead; the rest stays Chroma's.
"""

from collections.abc import Iterator

import driver
from chromadb import EmbeddingFunction, PersistentClient
from chromadb.config import Settings
from sentence_encoder import Encoder, shared


class SharedEncoder(EmbeddingFunction):
    """Chroma's embedding-function interface over the shared encoder."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder

    def __call__(self, input: list[str]) -> list:
        return list(self.encoder.encode(list(input)))


class Chroma(driver.System):
    packages = ("chromadb", "onnxruntime", "tokenizers", "sentence-transformers", "torch")

    def __init__(self, job: driver.Job) -> None:
        client = PersistentClient(
            path=job["workdir"], settings=Settings(anonymized_telemetry=False)
        )
        self.encoder = Encoder.from_job(job) if shared(job) else None
        # Chroma's default applies only when no embedding_function is passed at all (None: none).
        function = {"embedding_function": SharedEncoder(self.encoder)} if self.encoder else {}
        self.collection = client.get_or_create_collection("scifact", **function)

    def ingest(self, ids: list[str], texts: list[str]) -> None:
        self.collection.add(ids=ids, documents=texts)

    def finish(self) -> None:
        """Each `add` is already persisted."""

    def search(self, text: str, top_k: int) -> list[str]:
        return self.collection.query(query_texts=[text], n_results=top_k)["ids"][0]

    def settings(self) -> Iterator[str]:
        if self.encoder:
            yield f"HNSW, L2 space (defaults) on the shared encoder: {self.encoder.describe()}"
            return
        function = type(self.collection._embedding_function).__name__
        yield f"defaults: {function} (ONNX all-MiniLM-L6-v2), HNSW, L2 space"


if __name__ == "__main__":
    driver.main(Chroma)
