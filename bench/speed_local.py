"""Speed measured in this process with no server running: bare encode, and the fit split.

Nothing else of ours competes for the cores here, so bare encode is the ceiling of any ingest
and the fit split times the kernel fit, transform and index build that the server only sums.
"""

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import report
from bench.report import percentiles
from bench.speed_plan import Plan
from bench.speed_report import BATCH
from index.collection import Collection
from index.encoder import Encoder
from index.kernel import WhiteningKernel
from index.vector_index import VectorIndex


def bare_encode(
    encoder: Encoder, texts: Sequence[str], pool: Sequence[str], plan: Plan
) -> dict[str, Any]:
    """Throughput of `encode` on the corpus texts and the time of one query and of 32, in
    this process (the server is not running: nothing else of ours competes for the cores)."""
    encoder.encode(list(pool[:BATCH]))  # loads the model: not part of any figure
    load = os.getloadavg()
    started = time.perf_counter()
    encoder.encode(list(texts))
    seconds = time.perf_counter() - started
    one = timed(lambda i: encoder.encode([pool[i % len(pool)]]), plan.bare_queries)
    batch = timed(
        lambda i: encoder.encode([pool[(i * BATCH + j) % len(pool)] for j in range(BATCH)]),
        max(2, plan.batches // 4),
    )
    return {
        "texts": len(texts),
        "load_average": (load, os.getloadavg()),
        "seconds": seconds,
        "docs_per_second": len(texts) / seconds,
        "one_query_ms": percentiles(one),
        "batch_ms": percentiles(batch),
    }


def timed(call: Callable[[int], object], times: int) -> list[float]:
    """Milliseconds of `times` calls of `call(i)`, one after another."""
    out = []
    for i in range(times):
        started = time.perf_counter()
        call(i)
        out.append(1000 * (time.perf_counter() - started))
    return out


def fit_split(path: Path, info: dict[str, Any]) -> dict[str, float]:
    """Kernel fit, transform and index build timed apart, in this process, on the raw vectors
    the server stored (it is stopped): the server only reports their sum."""
    collection = Collection(path)
    try:
        _, raw = collection.raw_vectors_by_id()
    finally:
        collection.close()
    settings = info["settings"]
    timings = report.Timings()
    with timings.phase("kernel_fit"):
        kernel = WhiteningKernel(settings["beta"], settings["gamma"], settings["k"]).fit(raw)
    with timings.phase("transform"):
        vectors = kernel.transform(raw)
    with timings.phase("index_build"):
        VectorIndex.build(kernel.k_, settings["index_spec"], vectors, np.arange(len(raw)))
    return timings.seconds
