"""`python -m bench cluster`: what answering through shards adds to a query, against one collection.

In one run, interleaved for `--repeats` rounds: the same raw query vectors (Reuters sentences
not among the documents, encoded once) answered one at a time by one collection of the documents
(`Collection.answer`, the single node's path), by the same documents in 2 shards in this process
(`ShardedCollection` over local collections: the fan-out and the merge) and in 1 and 2 shards on
Ray Serve (`service.cluster.deploy`: a handle call per shard), and, for reference, as plain Ray
actors (`deploy_actors`: what a Ray call costs without Serve). Encoding is left out: it is the
same for every system, and the encoder benchmarks measure it. Every system uses the default
settings (k=128, SQ8, kernel re-scoring) and its collections hold the same documents.
"""

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import context, data, report
from index import Collection, Document
from index.search import Answer
from index.shards import ShardedCollection

log = logging.getLogger(__name__)

SYSTEMS = ("single", "local-2", "serve-1", "serve-2", "actor-1", "actor-2")
LABELS = {
    "single": "one collection (`Collection.answer`)",
    "local-2": "2 shards in this process (`ShardedCollection`)",
    "serve-1": "1 shard on Ray Serve (a handle call)",
    "serve-2": "2 shards on Ray Serve (a handle call each, in parallel)",
    "actor-1": "1 shard as a plain Ray actor (no Serve)",
    "actor-2": "2 shards as plain Ray actors (no Serve)",
}
TOP_K = 10
CPUS_PER_SHARD = 0.25
"""Ray's reservation per remote shard: the six of this run must fit the 2 CPUs at once (a
reservation only schedules; the passes run one system at a time)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--documents", type=int, default=20000, help="Reuters sentences stored")
    parser.add_argument("--queries", type=int, default=300, help="queries per system and round")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the systems")


def run(args: argparse.Namespace) -> int:
    import ray
    from ray import serve

    from service import cluster

    ctx = context.from_args(args)
    documents, queries, repeats = (
        (300, 20, 1) if args.smoke else (args.documents, args.queries, args.repeats)
    )
    texts = data.load_reuters_sentences(ctx.root, limit=documents + queries)
    vectors = ctx.cache.encode(ctx.encoder, texts, "Reuters sentences")
    stored, asked = vectors[:documents], vectors[documents:]
    docs = [Document(text, id=f"r{i}") for i, text in enumerate(texts[:documents])]
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    ray.init(
        num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, log_to_driver=False
    )
    serve.start(proxy_location="Disabled")
    try:
        model = ctx.encoder.model_id
        single = Collection.create(work / "single", model, stored.shape[1])
        single.add_vectors(docs, stored)
        systems: dict[str, Any] = {"single": single}
        opening = {
            "local": ShardedCollection.open,
            "serve": lambda path: cluster.deploy(path, cpus_per_shard=CPUS_PER_SHARD),
            "actor": lambda path: cluster.deploy_actors(path, cpus_per_shard=CPUS_PER_SHARD),
        }
        for name in SYSTEMS[1:]:
            kind, shards = name.split("-")
            ShardedCollection.initialise(work / name, model, stored.shape[1], int(shards))
            systems[name] = opening[kind](work / name)
            systems[name].add_vectors(docs, stored)
        passes = []
        for round_ in range(repeats):
            for name in SYSTEMS:
                load = os.getloadavg()
                ms = _timed(systems[name], asked)
                passes.append({"system": name, "round": round_, "load_average": load} | ms)
                log.info("%s round %d: p50 %.2f ms", name, round_, ms["p50"])
        same = _same_answers(systems, asked[: min(50, len(asked))])
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    figures = {
        "documents": documents,
        "queries": len(asked),
        "cores": os.cpu_count(),
        "top_k": TOP_K,
        "passes": passes,
        "same_top10_as_single": same,
    }
    report.write_json(ctx.out / "cluster.json", figures)
    path = report.write_text(ctx.out / "cluster.md", markdown(figures))
    print(path)
    return 0


def _timed(system: Any, queries: np.ndarray) -> dict[str, float]:
    """ms of each single-query answer, after 3 untimed ones; their p50, p95 and queries/s."""
    for query in queries[:3]:
        system.answer(query[None, :], TOP_K)
    ms = []
    started = time.perf_counter()
    for query in queries:
        begun = time.perf_counter()
        system.answer(query[None, :], TOP_K)
        ms.append((time.perf_counter() - begun) * 1000)
    seconds = time.perf_counter() - started
    summary = report.percentiles(ms)
    return {"p50": summary["p50"], "p95": summary["p95"], "qps": len(queries) / seconds}


def _same_answers(systems: dict[str, Any], queries: np.ndarray) -> dict[str, int]:
    """For each sharded system, the queries whose top-10 scores equal the single collection's
    at every rank (within 1e-6): ids can differ only where documents tie, such as a sentence
    stored twice, and ties have no order across shards."""
    want: Answer = systems["single"].answer(queries, TOP_K)
    return {
        name: sum(
            len(a) == len(b) and np.allclose([h.score for h in a], [h.score for h in b], atol=1e-6)
            for a, b in zip(systems[name].answer(queries, TOP_K).hits, want.hits, strict=True)
        )
        for name in SYSTEMS[1:]
    }


def table(figures: dict[str, Any]) -> str:
    """Each system's p50, p95 and queries/s (median of its passes), and what it adds to one."""
    median = {
        (name, key): statistics.median(p[key] for p in figures["passes"] if p["system"] == name)
        for name in SYSTEMS
        for key in ("p50", "p95", "qps")
    }
    rows = [
        [
            LABELS[name],
            f"{median[name, 'p50']:.2f}",
            f"{median[name, 'p95']:.2f}",
            f"{median[name, 'p50'] - median['single', 'p50']:+.2f}",
            f"{median[name, 'qps']:.0f}",
            "" if name == "single" else f"{figures['same_top10_as_single'][name]}",
        ]
        for name in SYSTEMS
    ]
    checked = min(50, figures["queries"])
    return "\n".join(
        [
            f"{figures['documents']:,} Reuters sentences, {figures['queries']} queries one at a "
            f"time (top {figures['top_k']}, encoding left out), {figures['cores']} cores, "
            f"{len(figures['passes']) // len(SYSTEMS)} interleaved rounds "
            "(`bench/results/cluster.json`):",
            "",
            report.markdown_table(
                [
                    "system",
                    "p50 ms",
                    "p95 ms",
                    "p50 added",
                    "queries/s",
                    f"same top-10 scores as one collection (of {checked} queries)",
                ],
                rows,
            ),
        ]
    )


def markdown(figures: dict[str, Any]) -> str:
    return report.page(
        "Sharded answers",
        "`python -m bench cluster`: see bench/cluster.py for what runs.",
        [table(figures), ""],
        figures["passes"],
    )
