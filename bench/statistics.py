"""`python -m bench statistics`: what the kernel's statistics cost, for the scale-out plan.

A distributed fit adds up n, Σx and Σxᵀx per Parquet file and derives the kernel once
(`index.statistics.Statistics`, `index.distributed.statistics`). Three costs size that at 1e8
documents: the statistics of a block (per vector, on one core), the sum of two (once per file on
the driver), and the derivation (the d × d eigendecomposition, once per fit). Their cost does not
depend on the vectors' values, so normal random vectors of the model's dimension stand in for
encoded ones; the block is the size the distributed encode writes (`MAX_BLOCK_ROWS`).
"""

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench import report
from index.blas import pin_threads
from index.distributed import MAX_BLOCK_ROWS
from index.kernel import WhiteningKernel
from index.statistics import Statistics

DIMENSION = 384
"""all-MiniLM-L6-v2's."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=20, help="timings of each step")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else report.RESULTS_DIR
    repeats = 3 if args.smoke else args.repeats
    pin_threads()
    block = np.random.default_rng(0).standard_normal((MAX_BLOCK_ROWS, DIMENSION)).astype(np.float32)
    part = Statistics.of(block)
    figures = {
        "dimension": DIMENSION,
        "block_rows": MAX_BLOCK_ROWS,
        "repeats": repeats,
        "load_average": os.getloadavg(),
        "block_seconds": _timed(lambda: Statistics.of(block), repeats),
        "sum_seconds": _timed(lambda: part + part, repeats),
        "derive_seconds": _timed(lambda: WhiteningKernel().merge(part), repeats),
    }
    report.write_json(out / "statistics.json", figures)
    print(out / "statistics.json")
    return 0


def _timed(step: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Median and range of `repeats` timings of `step`, in seconds."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - started)
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds)}
