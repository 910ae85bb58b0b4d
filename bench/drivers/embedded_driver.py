"""Ours without HTTP: the service's Engine in process, over the collection the server wrote.

Run with the project's interpreter after the server has stopped, with the server's settings (the
same WHITENED_SEARCH_* variables), so the difference from the HTTP figures is what the HTTP layer
(client, uvicorn, FastAPI, JSON) costs per query, and nothing else. Queries run in one worker
thread, as the server runs them (FastAPI's threadpool): called from the main thread, encoding
and FAISS were 5 to 40 times slower here on a loaded 2-core machine (OpenMP pools contending).

After each timed query the same text is encoded alone (Engine.search.embed, the same encoder
call without the search) on the same thread, timed and not counted in the query's time: the two
encodings are compared query by query in one process, with no minutes between them.
"""

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import driver

from service.config import ServerSettings
from service.engine import Engine


class Embedded(driver.System):
    packages = ("whitened-search", "faiss-cpu", "sentence-transformers", "torch")

    def __init__(self, job: driver.Job) -> None:
        self.engine = Engine(ServerSettings())
        self.name = job["collection"]
        self.worker = ThreadPoolExecutor(1)
        self.split: list[tuple[float, float]] = []
        self.paired: list[tuple[float, float]] = []
        """(encoding inside Engine.query, the same text's encoding alone right after), seconds."""
        self.search("warm up", 1)  # the server loads its model before serving

    def ingest(self, ids: list[str], texts: list[str]) -> None:
        raise NotImplementedError("the embedded run only queries the server's collection")

    def finish(self) -> None:
        raise NotImplementedError("the embedded run only queries the server's collection")

    def search(self, text: str, top_k: int) -> list[str]:
        answer, encode, search = self.worker.submit(
            self.engine.search.query, self.name, [text], top_k
        ).result()
        self.split.append((encode, search))
        return [hit.id for hit in answer.hits[0]]

    def aside(self, text: str) -> None:
        self.paired.append((self.split[-1][0], self.worker.submit(self._embed, text).result()))

    def _embed(self, text: str) -> float:
        """Seconds to encode `text` through the collection's encoder, on the worker thread."""
        begun = time.perf_counter()
        self.engine.search.embed(self.name, [text], "raw")
        return time.perf_counter() - begun

    def inner(self) -> dict[str, float]:
        """Median encode and search ms inside Engine.query (the server's Server-Timing split),
        over every call (the warm-up ones included: 4 of several hundred); the timed queries'
        encoding beside the same texts' encoding alone, and their median difference."""
        encode, search = sorted(s[0] for s in self.split), sorted(s[1] for s in self.split)
        middle = len(self.split) // 2
        inner = {"encode_ms_p50": 1000 * encode[middle], "search_ms_p50": 1000 * search[middle]}
        if self.paired:
            inner |= {
                "paired_encode_ms_p50": 1000 * statistics.median(p[0] for p in self.paired),
                "encode_alone_ms_p50": 1000 * statistics.median(p[1] for p in self.paired),
                "encode_over_alone_ms_p50": 1000 * statistics.median(a - b for a, b in self.paired),
            }
        return inner


if __name__ == "__main__":
    driver.main(Embedded)
