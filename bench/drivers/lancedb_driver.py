"""LanceDB embedded on its defaults, then with its quantizing indexes: IVF_PQ and IVF_RQ (RaBitQ).

LanceDB stores the vectors the client gives it, so the documents and queries are encoded by
sentence-transformers (bench/drivers/sentence_encoder.py). `lancedb.connect(workdir)`, one table
(id, text, vector) made by `create_table` with the first chunk and grown by `add`; a search is
`table.search(vector).limit(10)`. First with no index: what a user gets first, a brute-force scan
(L2 on unit vectors: the order of cosine). Then, without re-encoding, `create_index("vector",
config=IvfPq())` and `IvfRq()` with the library's defaults (partitions, sub-vectors, bits), each
searched with its default nprobes, then with `refine_factor(10)` (10×k candidates re-ranked by the
stored float32 vectors). Each setting line says what the library reports of the index it built:
rows indexed, partitions, code bytes per vector; the notes give its reported size per vector.
"""

import re
import time
from collections.abc import Iterator
from typing import Any

import driver
import lancedb
from lancedb.index import IvfPq, IvfRq
from sentence_encoder import Encoder

REFINE = 10


class LanceDb(driver.System):
    packages = ("lancedb", "pyarrow", "sentence-transformers", "torch")

    def __init__(self, job: driver.Job) -> None:
        self.encoder = Encoder.from_job(job)
        self.db = lancedb.connect(job["workdir"])
        self.table: Any = None
        self.refine: int | None = None
        self.index: dict[str, float] = {}

    def ingest(self, ids: list[str], texts: list[str]) -> None:
        vectors = self.encoder.encode(texts)
        rows = [
            {"id": i, "text": t, "vector": v} for i, t, v in zip(ids, texts, vectors, strict=True)
        ]
        if self.table is None:
            self.table = self.db.create_table("scifact", data=rows)
        else:
            self.table.add(rows)

    def finish(self) -> None:
        """Every `create_table` / `add` is a committed version of the table on disk."""

    def search(self, text: str, top_k: int) -> list[str]:
        query = self.table.search(self.encoder.encode([text])[0]).limit(top_k)
        if self.refine is not None:
            query = query.refine_factor(self.refine)
        return query.select(["id", "_distance"]).to_arrow()["id"].to_pylist()

    def settings(self) -> Iterator[str]:
        yield (
            f"defaults: no index, an exact brute-force scan, L2 on the unit vectors; "
            f"{self.encoder.describe()}"
        )
        for config in (IvfPq(), IvfRq()):
            built = self.build(config)
            self.refine = None
            yield f"{built}, no refine"
            self.refine = REFINE
            yield f"{built}, refine_factor {REFINE}"

    def build(self, config: IvfPq | IvfRq) -> str:
        """Create the index with the library's defaults; describe it as the library reports it."""
        started = time.perf_counter()
        self.table.create_index("vector", config=config)
        seconds = time.perf_counter() - started
        (info,) = [i for i in self.table.list_indices() if i.columns == ["vector"]]
        compression = info.index_details["compression"]
        bits = compression["num_bits"]
        if compression["type"] == "pq":
            sub = compression["num_sub_vectors"]
            codes = f"{sub} sub-vectors × {bits} bits = {sub * bits // 8} B/vector codes"
            kind = "IVF_PQ"
        else:
            codes = (
                f"{bits} bit × {self.encoder.dimension} dims = "
                f"{bits * self.encoder.dimension // 8} B/vector codes"
            )
            kind = f"IVF_RQ (RaBitQ, {compression.get('rotation_type', '?')} rotation)"
        rows = info.num_indexed_rows + info.num_unindexed_rows
        plan = self.table.search(self.encoder.encode(["plan"])[0]).limit(10).analyze_plan()
        partitions = re.search(r"partitions_ranked=(\d+)", plan)
        nprobes = re.search(r"minimum_nprobes=(\d+)", plan)
        self.index = {"index_build_seconds": seconds}
        if info.num_indexed_rows == 0:
            return (
                f"{kind} with the library's defaults: 0 of {rows} rows indexed (too few to "
                "train), so an exact brute-force scan"
            )
        self.index["index_bytes_per_vector"] = info.size_bytes / info.num_indexed_rows
        where = (
            f"{partitions.group(1)} IVF partition{'' if partitions.group(1) == '1' else 's'}, "
            f"nprobes {nprobes.group(1)}"
            if partitions and nprobes
            else "default partitions and nprobes"
        )
        return f"{kind} with the library's defaults: {where}, {codes}"

    def inner(self) -> dict[str, float]:
        """The index the last setting searched: build seconds, bytes per vector (reported)."""
        return dict(self.index)


if __name__ == "__main__":
    driver.main(LanceDb)
