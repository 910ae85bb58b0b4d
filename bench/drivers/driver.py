"""The side of `python -m bench peers` that runs inside a system's own virtual environment.

A driver script (`txtai_driver.py`, ...) defines a `System` and calls `main`. It runs as
`python DRIVER job.json result.json` with that system's interpreter, so it may import only the
standard library, this module and the system itself: nothing of the project. The bench writes the
job, reads the result and does all the scoring, so every system is measured by the same code.

job.json: {"model": path, "chunk", "top_k", "warmup", "workdir",
           "documents": path of a JSONL of {"id", "text"} or null (no ingest), "queries": [text]}
result.json: {"load_seconds", "ingest_seconds", "documents", "settings": [{"setting", "seconds",
              "rankings", "inner"}], "peak_rss_bytes", "versions"}
"""

import json
import resource
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

Job = dict[str, Any]


class System(ABC):
    """One system under test, built from the job (its model loaded, ready to ingest)."""

    packages: tuple[str, ...] = ()
    """Distributions whose versions the result records."""

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


def main(build: Callable[[Job], System]) -> None:
    job_path, result_path = sys.argv[1:3]
    job: Job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    started = time.perf_counter()
    system = build(job)
    result: dict[str, Any] = {"load_seconds": time.perf_counter() - started}
    if job.get("documents"):
        result.update(_ingest(system, Path(job["documents"]), job["chunk"]))
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
        result["settings"].append(
            {
                "setting": description,
                "seconds": seconds,
                "rankings": rankings,
                "inner": system.inner(),
            }
        )
    usage = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    result["peak_rss_bytes"] = usage * 1024  # KiB on Linux
    result["versions"] = {name: metadata.version(name) for name in system.packages}
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")


def _ingest(system: System, path: Path, chunk: int) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    started = time.perf_counter()
    for begin in range(0, len(rows), chunk):
        part = rows[begin : begin + chunk]
        system.ingest([row["id"] for row in part], [row["text"] for row in part])
    system.finish()
    return {"ingest_seconds": time.perf_counter() - started, "documents": len(rows)}
