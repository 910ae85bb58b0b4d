"""`python -m bench <name> [--smoke] [--out DIR] ...`: run one benchmark.

Every command but render measures (BENCHMARKS below, `--help` for the list); render rewrites the
documents' tables from the result files. See bench/README.md.
"""

import argparse
import importlib
import logging
import sys
import time
from collections.abc import Sequence

from bench import report
from index.encoder import DEFAULT_BATCH_SIZE

BENCHMARKS = {
    "quality": "bench.quality",
    "compression": "bench.compression",
    "speed": "bench.speed",
    "peers": "bench.peers",
    "encoders": "bench.encoders",
    "load": "bench.load",
    "render": "bench.render",
    "distributed": "bench.distributed",
    "statistics": "bench.statistics",
    "cluster": "bench.cluster",
    "cluster-http": "bench.cluster_http",
    "cluster-faults": "bench.cluster_faults",
    "tuned": "bench.served_tuning",
    "suite": "bench.suite",
}
MEASURES_NOTHING = {"render"}
"""Commands that only read result files: none of the common options apply."""
DESCRIPTIONS = {
    "quality": "STS-B and SciFact quality of each kernel setting and k (tables + plots)",
    "compression": "bytes per vector against quality: index specs, k, re-scoring; as served",
    "speed": "the real server on Reuters: ingest, latency, queries/s, memory, k × index",
    "peers": "ours (HTTP and embedded) beside txtai and Chroma on SciFact, each in its own venv",
    "encoders": "encoder backends (torch, onnx, onnx-int8): speed, STS-B, agreement",
    "load": "queries/s, p50/p99, errors and server memory under load while ingest jobs run",
    "render": "rewrite the tables of README.md and bench/README.md from bench/results/*.json",
    "distributed": "docs/s of the Ray ingest (1 and 2 encoder actors) and of the plain one",
    "statistics": "the kernel statistics' costs: per vector, per merge, per derivation",
    "cluster": "one query through 1 and 2 shards (in process, on Ray Serve) against one collection",
    "cluster-http": "the REST API on Ray (1 and 2 shards) against the single-node server, SciFact",
    "cluster-faults": "SIGKILL a shard while the Ray application takes writes and queries",
    "tuned": "tune over HTTP, apply, and what the collection serves on examples never chosen on",
    "suite": "the README's test command (python -m pytest), timed: outcomes, slowest, figures",
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, same code paths: checks the benchmark still runs",
    )
    parser.add_argument("--out", help=f"output folder (default {report.RESULTS_DIR})")
    parser.add_argument(
        "--data",
        help="data folder (default $WHITENED_TEST_DATA or ../shared/data beside the repository)",
    )
    parser.add_argument(
        "--model", help="sentence-transformers model (default: the bundled all-MiniLM-L6-v2)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"texts per forward pass (default {DEFAULT_BATCH_SIZE}, as the library and server)",
    )
    parser.add_argument("--cache-dir", help="embedding cache folder (default bench/.cache)")
    parser.add_argument("--no-cache", action="store_true", help="always encode, store nothing")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="benchmark", required=True, metavar="<name>")
    for name, module in BENCHMARKS.items():
        sub = commands.add_parser(name, help=DESCRIPTIONS[name], description=DESCRIPTIONS[name])
        if name not in MEASURES_NOTHING:
            _common(sub)
        if module is not None:
            importlib.import_module(module).add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logger = logging.getLogger("bench")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    module = BENCHMARKS[args.benchmark]
    if module is None:
        print(
            f"bench {args.benchmark}: not implemented yet (issue 6); see bench/README.md",
            file=sys.stderr,
        )
        return 2
    from bench.data import DataMissing

    started = time.perf_counter()
    try:
        code = importlib.import_module(module).run(args)
    except DataMissing as exc:
        print(f"bench {args.benchmark}: {exc}", file=sys.stderr)
        return 3
    logger.info(
        "bench %s finished in %s",
        args.benchmark,
        report.format_seconds(time.perf_counter() - started),
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
