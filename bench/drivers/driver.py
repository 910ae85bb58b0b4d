"""The side of `python -m bench peers` that runs inside a system's own virtual environment.

A driver script (`txtai_driver.py`, ...) defines a `System` and calls `main`. It runs as
`python DRIVER job.json result.json` with that system's interpreter, so it may import only the
standard library, this module and the system itself: nothing of the project. The bench writes the
job, reads the result and does all the scoring, so every system is measured by the same code.

job.json: {"model": path, "chunk", "top_k", "warmup", "workdir",
           "documents": path of a JSONL of {"id", "text"} or null (no ingest), "queries": [text],
           "http": query the peer's own server instead of the library (optional)}
result.json: {"load_seconds", "ingest_seconds", "documents", "settings": [{"setting", "seconds",
              "rankings", "inner", "queries_per_s" (over HTTP)}], "peak_rss_bytes", "versions",
              "http"}
"""

import json
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

Job = dict[str, Any]

CLIENTS = 4
"""Clients of the queries/s figure over HTTP, each sending one query at a time."""


def throughput(
    search: Callable[[str], object], queries: list[str], clients: int = CLIENTS
) -> float:
    """Queries/s with `clients` threads answering every query once between them."""
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(search, queries))
    return len(queries) / (time.perf_counter() - started)


class System(ABC):
    """One system under test, built from the job (its model loaded, ready to ingest)."""

    packages: tuple[str, ...] = ()
    """Distributions whose versions the result records."""
    http = False
    """Whether `search` asks the peer's own server over HTTP (then queries/s is measured too)."""

    @abstractmethod
    def ingest(self, ids: list[str], texts: list[str]) -> None:
        """Add one chunk of documents (encoding them)."""

    @abstractmethod
    def finish(self) -> None:
        """Make the ingested documents durable in the job's workdir (counted in ingest time)."""

    @abstractmethod
    def search(self, text: str, top_k: int) -> list[str]:
        """Ids of the top_k nearest documents to one query text, best first."""

    def settings(self) -> Iterator[str]:
        """Configure each search-time setting in turn and yield its description."""
        yield "default"

    def inner(self) -> dict[str, float]:
        """Timings the system reports about its own queries (none by default)."""
        return {}

    def aside(self, text: str) -> None:  # noqa: B027 (most systems do nothing between queries)
        """Untimed work right after each timed query (none by default): the embedded run times
        the same text's encoding alone there, so the two are compared query by query."""

    def server_pid(self) -> int | None:
        """The process whose peak memory to report when it is not this one (a server's)."""
        return None

    def close(self) -> None:  # noqa: B027 (most systems start nothing)
        """Stop what the system started (a server)."""


def shared_encoder(job: Job) -> Any:
    """The shared encoder (sentence_encoder.Encoder) when the job asks for it (`bench peers
    --encoder shared`), else None: imported only then, so that a system on its own encoder never
    loads torch for it (its memory would count)."""
    if job.get("encoder") != "shared":
        return None
    from sentence_encoder import Encoder

    return Encoder.from_job(job)


def main(build: Callable[[Job], System]) -> None:
    job_path, result_path = sys.argv[1:3]
    job: Job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    started = time.perf_counter()
    system = build(job)
    result: dict[str, Any] = {"load_seconds": time.perf_counter() - started}
    try:  # a server the system started stops even when a step fails
        result |= _measure(system, job)
    finally:
        system.close()
    result["versions"] = {name: metadata.version(name) for name in system.packages}
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")


def _measure(system: System, job: Job) -> dict[str, Any]:
    """Ingest (when the job has documents), then every setting's timed queries, then memory."""
    result: dict[str, Any] = {}
    if job.get("documents"):
        result |= _ingest(system, Path(job["documents"]), job["chunk"])
    top_k, warmup, queries = job["top_k"], job["warmup"], job["queries"]
    result["settings"] = []
    for description in system.settings():
        for text in queries[:warmup]:  # first calls pay for lazy loading: not timed
            system.search(text, top_k)
        seconds, rankings = [], []
        for text in queries:
            begun = time.perf_counter()
            rankings.append(system.search(text, top_k))
            seconds.append(time.perf_counter() - begun)
            system.aside(text)
        setting = {
            "setting": description,
            "seconds": seconds,
            "rankings": rankings,
            "inner": system.inner(),
        }
        if system.http:
            setting["queries_per_s"] = throughput(lambda t: system.search(t, top_k), queries)
        result["settings"].append(setting)
    result["peak_rss_bytes"] = peak_rss_bytes(system.server_pid() or "self")
    result["http"] = system.http
    return result


def peak_rss_bytes(pid: int | str = "self") -> int:
    """A process's peak resident memory: VmHWM of /proc/<pid>/status (Linux), in bytes.

    Not ru_maxrss: a child's starts at its parent's resident size at the fork and exec keeps it,
    so drivers started by a bench process holding 1.2 GB all reported 1,219 MiB."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def _ingest(system: System, path: Path, chunk: int) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    started = time.perf_counter()
    for begin in range(0, len(rows), chunk):
        part = rows[begin : begin + chunk]
        system.ingest([row["id"] for row in part], [row["text"] for row in part])
    system.finish()
    return {"ingest_seconds": time.perf_counter() - started, "documents": len(rows)}
