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
"""

from collections.abc import Iterator
from typing import Any

import driver
from sentence_encoder import Encoder, shared
from txtai import Embeddings


class Txtai(driver.System):
    packages = ("txtai", "faiss-cpu", "transformers", "sentence-transformers", "torch")

    def __init__(self, job: driver.Job) -> None:
        self.workdir = job["workdir"]
        self.encoder = Encoder.from_job(job) if shared(job) else None
        model = {"path": job["model"]}
        if self.encoder:
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
        if not job.get("documents"):  # no ingest: query the index a previous run saved
            self.embeddings.load(self.workdir)

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


if __name__ == "__main__":
    driver.main(Txtai)
