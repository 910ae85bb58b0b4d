"""txtai's `Embeddings` on its defaults, texts stored, as its documentation sets it up.

Only the model path and `content=True` (keep the texts, as the other systems do) are set. The
rest is txtai's: for a model path it infers its `transformers` method (Hugging Face transformers
on torch with txtai's own pooling, which reads the model's sentence-transformers pooling config),
`encodebatch` 32, indexing batches of 1024, the FAISS backend. Over 5,000 documents FAISS gets an
IVF index (`IVF{x},Flat`, x cells) searched with nprobe = x/16 cells, so a second pass searches
every cell (exact, as Flat); at 5,000 or fewer it is Flat (exact) and there is one pass.

With `--encoder shared` txtai encodes through the shared encoder (bench/drivers/sentence_encoder.py)
as its documented `external` vectors method (`transform`: a function from a batch of texts to
vectors); the rest stays txtai's.

With `"http"` in the job, TxtaiApi queries the saved index through txtai's own API server instead.
"""

import json
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import driver
from peer_server import Server
from txtai import Embeddings


class Txtai(driver.System):
    packages: tuple[str, ...] = ("txtai", "faiss-cpu", "transformers", "torch")

    def __init__(self, job: driver.Job) -> None:
        self.workdir = job["workdir"]
        self.encoder = driver.shared_encoder(job)
        model = {"path": job["model"]}
        if self.encoder:
            self.packages = (*self.packages, "sentence-transformers")
            encode = self.encoder.encode

            def transform(texts: list[str]) -> Any:
                """A plain function: txtai calls any other callable once to get one."""
                return encode(texts)

            model = {"method": "external", "transform": transform}
        self.embeddings = Embeddings(
            **model,
            content=True,  # keep the texts (SQLite), as the other systems do
        )
        self.rows: list[tuple[str, str, None]] = []

    def ingest(self, ids: list[str], texts: list[str]) -> None:
        # txtai builds its index in one `index` call (later calls replace it): collect, then build.
        self.rows.extend((i, t, None) for i, t in zip(ids, texts, strict=True))

    def finish(self) -> None:
        self.embeddings.index(self.rows)
        self.embeddings.save(self.workdir)

    def search(self, text: str, top_k: int) -> list[str]:
        return [str(hit["id"]) for hit in self.embeddings.search(text, top_k)]

    def settings(self) -> Iterator[str]:
        components = self.embeddings.config["build"]["settings"]["components"]
        if self.encoder:
            components += f" on the shared encoder: {self.encoder.describe()}"
        backend = self.embeddings.ann.backend
        cells = getattr(backend, "nlist", None)
        if cells is None:
            yield f"defaults: FAISS {components} (exact)"
            return
        probe = self.embeddings.ann.nprobe()
        yield f"defaults: FAISS {components}, nprobe {probe} of {cells} cells"
        self.embeddings.config.setdefault("faiss", {})["nprobe"] = cells
        yield f"FAISS {components}, nprobe {cells} (every cell: exact)"


class TxtaiApi(driver.System):
    """txtai's own API (`txtai.api` on uvicorn, one worker) over the index the in-process pass
    saved, configured as its documentation does: `path` to the index and an `embeddings` section;
    a query is `GET /search?query=...&limit=10`, encoded in the server."""

    packages = ("txtai", "fastapi", "uvicorn")
    http = True

    def __init__(self, job: driver.Job) -> None:
        workdir = Path(job["workdir"])
        config = workdir.with_name(workdir.name + "-api.yml")
        config.write_text(json.dumps({"path": str(workdir), "embeddings": {}}), encoding="utf-8")
        command = [sys.executable, "-m", "uvicorn", "txtai.api:app", "--port", "{port}"]
        log = workdir.with_name(workdir.name + "-api.log")
        self.server = Server(command, log, "/count", {"CONFIG": str(config)})

    def ingest(self, ids: list[str], texts: list[str]) -> None:
        raise NotImplementedError("the API run queries the index the in-process run saved")

    def finish(self) -> None:
        """Nothing ingested."""

    def search(self, text: str, top_k: int) -> list[str]:
        query = urllib.parse.urlencode({"query": text, "limit": top_k})
        return [str(hit["id"]) for hit in self.server.get_json(f"/search?{query}")]

    def settings(self) -> Iterator[str]:
        yield "defaults over HTTP: txtai.api on uvicorn, GET /search, the saved index"

    def server_pid(self) -> int:
        return self.server.process.pid

    def close(self) -> None:
        self.server.stop()


if __name__ == "__main__":
    driver.main(lambda job: TxtaiApi(job) if job.get("http") else Txtai(job))
