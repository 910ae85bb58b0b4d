"""Chroma embedded (`PersistentClient`) on its defaults: no embedding function given, so Chroma's
`DefaultEmbeddingFunction` (ONNX all-MiniLM-L6-v2 on ONNX Runtime, batches of 32) encodes, and
the collection's default index (HNSW, L2 space) searches.

The model files it would download on first use are put in place by `bench peers --setup`
(bench/chroma_model.py) under the HOME this driver runs with; nothing else is changed.

With `--encoder shared` the collection gets an embedding function around the shared encoder
(bench/drivers/sentence_encoder.py) instead; the rest stays Chroma's.

With `"http"` in the job, ChromaServer queries the same directory through Chroma's own server
(`chroma run`) with its `HttpClient`, which encodes on the client as Chroma's clients do.
"""

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import driver
from chromadb import EmbeddingFunction, HttpClient, PersistentClient
from chromadb.config import Settings
from peer_server import Server


class SharedEncoder(EmbeddingFunction):
    """Chroma's embedding-function interface over the shared encoder."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder

    def __call__(self, input: list[str]) -> list:
        return list(self.encoder.encode(list(input)))


class Chroma(driver.System):
    packages: tuple[str, ...] = ("chromadb", "onnxruntime", "tokenizers")

    def __init__(self, job: driver.Job) -> None:
        client = PersistentClient(
            path=job["workdir"], settings=Settings(anonymized_telemetry=False)
        )
        self.encoder = driver.shared_encoder(job)
        if self.encoder:
            self.packages = (*self.packages[:1], "sentence-transformers", "torch")
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


class ChromaServer(driver.System):
    """Chroma's server (`chroma run --path DIR`) over the directory the in-process pass wrote,
    queried through `HttpClient` with the collection's persisted default embedding function:
    the client encodes (ONNX), the server searches."""

    packages = ("chromadb", "onnxruntime")
    http = True

    def __init__(self, job: driver.Job) -> None:
        workdir = Path(job["workdir"])
        chroma = str(Path(sys.executable).with_name("chroma"))
        command = [chroma, "run", "--path", str(workdir), "--host", "127.0.0.1", "--port", "{port}"]
        log = workdir.with_name(workdir.name + "-server.log")
        self.server = Server(command, log, "/api/v2/heartbeat", {})
        client = HttpClient(
            host="127.0.0.1",
            port=self.server.port,
            settings=Settings(anonymized_telemetry=False),
        )
        self.collection = client.get_collection("scifact")

    def ingest(self, ids: list[str], texts: list[str]) -> None:
        raise NotImplementedError("the server run queries the directory the in-process run wrote")

    def finish(self) -> None:
        """Nothing ingested."""

    def search(self, text: str, top_k: int) -> list[str]:
        return self.collection.query(query_texts=[text], n_results=top_k)["ids"][0]

    def settings(self) -> Iterator[str]:
        function = type(self.collection._embedding_function).__name__
        yield f"defaults over HTTP: chroma run, HttpClient encoding with {function}"

    def server_pid(self) -> int:
        return self.server.process.pid

    def close(self) -> None:
        self.server.stop()


if __name__ == "__main__":
    driver.main(lambda job: ChromaServer(job) if job.get("http") else Chroma(job))
