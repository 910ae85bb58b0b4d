"""Ours without HTTP: the service's Engine in process, over the collection the server wrote.

Run with the project's interpreter after the server has stopped, with the server's settings (the
same WHITENED_SEARCH_* variables), so the difference from the HTTP figures is what the HTTP layer
(client, uvicorn, FastAPI, JSON) costs per query, and nothing else. Queries run in one worker
thread, as the server runs them (FastAPI's threadpool): called from the main thread, encoding
and FAISS were 5 to 40 times slower here on a loaded 2-core machine (OpenMP pools contending).
"""

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

    def inner(self) -> dict[str, float]:
        """Median encode and search ms inside Engine.query (the server's Server-Timing split),
        over every call (the warm-up ones included: 4 of several hundred)."""
        encode, search = sorted(s[0] for s in self.split), sorted(s[1] for s in self.split)
        middle = len(self.split) // 2
        return {"encode_ms_p50": 1000 * encode[middle], "search_ms_p50": 1000 * search[middle]}


if __name__ == "__main__":
    driver.main(Embedded)
