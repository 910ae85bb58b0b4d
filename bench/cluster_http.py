"""`python -m bench cluster-http`: the REST API on Ray Serve against the single-node server.

What a client sees, over HTTP on 127.0.0.1: the single-node server (`python -m service`) and the
Ray application (`python -m service --ray`: a local Ray, Serve's proxy, the ingress, one encoder
replica, each shard a Ray actor), both on their defaults, each holding SciFact ingested through
its own API as a background job: one collection on the single node, and on the cluster one of 1
shard and one of 2. Then:

- the same answers: every test query's top 10 ids and scores on each cluster collection against
  the single node's, and nDCG@10 of each;
- latency and queries/s, interleaved for `--repeats` rounds: the test queries one at a time
  (p50, p95; the text encoded by the server, as a user's query is), then answered by 4 clients;
- paired, in each round: every test query asked of the three systems back to back, in an order
  that rotates from query to query, so a difference between two systems is taken over the same
  query at the same moment of the machine's load (the fan-out figure: 2 shards against 1);
- ingest docs/s of each job, and resident memory of each system's processes at the end.
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

import httpx

from bench import context, data, report
from bench.drivers.driver import CLIENTS, throughput
from bench.live import LiveServer
from bench.speed_http import checked
from index.metrics import ndcg_at_k

log = logging.getLogger(__name__)

TOP_K = 10
SYSTEMS = ("single", "ray-1", "ray-2")
LABELS = {
    "single": "single-node server (`python -m service`)",
    "ray-1": "Ray application, 1 shard (`python -m service --ray`)",
    "ray-2": "Ray application, 2 shards",
}
COLLECTIONS = {"single": ("docs", None), "ray-1": ("one", 1), "ray-2": ("two", 2)}
"""Each system's collection and its shards (None: a plain collection)."""
HEALTH = {"single": "single", "ray": "ray-1"}
"""Each server whose GET /health is timed, and the system whose client asks it."""
WIDE_CANDIDATES = 1000
"""Candidates per query in the second comparison: enough that every system's exact top 10 is
among them, so only the kernel decides the answer."""
POLL_SECONDS = 0.5
BATCH = 50
"""Queries per request when comparing answers (the latency passes send one)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the latency passes")
    parser.add_argument(
        "--documents", type=int, default=None, help="SciFact subset size (default: all 5,183)"
    )


def run(args: argparse.Namespace) -> int:
    ctx = context.from_args(args)
    limit, asked, repeats = (150, 30, 1) if args.smoke else (args.documents, None, args.repeats)
    scifact = data.load_scifact(ctx.root, limit_docs=limit, splits=("test",))
    judged = scifact.qrels["test"]
    queries = [
        (q, text) for q, text in zip(scifact.query_ids, scifact.queries, strict=True) if q in judged
    ][:asked]
    documents = [
        {"id": i, "text": t} for i, t in zip(scifact.doc_ids, scifact.documents, strict=True)
    ]
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-http-"))
    single = LiveServer(work / "single", work / "single.log")
    cluster = LiveServer(work / "cluster", work / "cluster.log", ray=True)
    try:
        single.start()
        cluster.start(timeout=300)
        servers = {"single": single, "ray-1": cluster, "ray-2": cluster}
        clients = {name: servers[name].client(timeout=600) for name in SYSTEMS}
        ingests = {name: _ingest(clients[name], name, documents) for name in SYSTEMS}
        described = {
            name: checked(clients[name].get(f"/collections/{COLLECTIONS[name][0]}"))
            for name in SYSTEMS
        }
        texts = [t for _, t in queries]
        answers = {name: _answers(clients[name], name, texts) for name in SYSTEMS}
        wide = {name: _answers(clients[name], name, texts, WIDE_CANDIDATES) for name in SYSTEMS}
        passes: list[dict[str, Any]] = []
        paired = _paired_record()
        for round_ in range(repeats):
            for name in SYSTEMS:
                load = os.getloadavg()
                timed = _timed(clients[name], name, [t for _, t in queries])
                passes.append({"system": name, "round": round_, "load_average": load} | timed)
                log.info(
                    "%s round %d: p50 %.2f ms, %.1f q/s", name, round_, timed["p50"], timed["qps"]
                )
            _paired(clients, texts, paired)
        memory = {"single": single.tree_rss(), "ray": cluster.tree_rss()}
        for client in clients.values():
            client.close()
    finally:
        single.close()
        cluster.close()
        shutil.rmtree(work, ignore_errors=True)
    ids = [q for q, _ in queries]
    figures = {
        "documents": len(documents),
        "queries": len(queries),
        "cores": os.cpu_count(),
        "top_k": TOP_K,
        "clients": CLIENTS,
        "ingest": ingests,
        "ndcg_at_10": {
            name: ndcg_at_k(
                [[h["id"] for h in hits] for hits in answers[name]], [judged[q] for q in ids]
            )
            for name in SYSTEMS
        },
        "same_as_single": {
            name: _compare(answers["single"], answers[name]) for name in SYSTEMS[1:]
        },
        "wide_candidates": WIDE_CANDIDATES,
        "same_as_single_wide": {name: _compare(wide["single"], wide[name]) for name in SYSTEMS[1:]},
        "passes": passes,
        "paired_ms": paired["ms"],
        "paired_server_ms": paired["server_ms"],
        "paired_health_ms": paired["health_ms"],
        "resident_bytes": memory,
        "described": described,
    }
    report.write_json(ctx.out / "cluster_http.json", figures)
    print(report.write_text(ctx.out / "cluster_http.md", markdown(figures)))
    return 0


def _ingest(client: httpx.Client, system: str, documents: list[dict[str, str]]) -> dict[str, Any]:
    """Create the system's collection (server defaults, its shards) and ingest as one job."""
    name, shards = COLLECTIONS[system]
    checked(
        client.post("/collections", json={"name": name} | ({"shards": shards} if shards else {}))
    )
    started = time.perf_counter()
    job = checked(client.post(f"/collections/{name}/ingest", json={"documents": documents}))["job"]
    while job["state"] not in ("done", "failed"):
        time.sleep(POLL_SECONDS)
        job = checked(client.get(f"/jobs/{job['id']}"))
    seconds = time.perf_counter() - started
    if job["state"] != "done" or not job["fitted"]:
        raise RuntimeError(
            f"{system}: ingest job ended {job['state']}: {job['error'] or job['fit_error']}"
        )
    return {"seconds": seconds, "docs_per_second": len(documents) / seconds}


def _answers(
    client: httpx.Client, system: str, texts: list[str], candidates: int | None = None
) -> list[list[dict[str, Any]]]:
    """Every query's top-10 hits ({id, score}), asked `BATCH` at a time, with the collection's
    candidates or `candidates`; the answer must be whole."""
    name = COLLECTIONS[system][0]
    hits = []
    for start in range(0, len(texts), BATCH):
        body = {"texts": texts[start : start + BATCH], "top_k": TOP_K, "candidates": candidates}
        answer = checked(client.post(f"/collections/{name}/query", json=body))
        if answer["partial"]:
            raise RuntimeError(
                f"{system}: a partial answer, shards {answer['missing_shards']} missing"
            )
        hits += [
            [{"id": h["id"], "score": h["score"]} for h in r["hits"]] for r in answer["results"]
        ]
    return hits


def _compare(want: list[list[dict[str, Any]]], have: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Queries whose top-10 ids are the single node's in the same order, those with a lower
    score than the single node's at some rank (by more than 1e-6), and the largest difference
    of a score at the same rank."""
    pairs = list(zip(want, have, strict=True))
    same = sum([h["id"] for h in a] == [h["id"] for h in b] for a, b in pairs)
    worse = sum(
        len(b) < len(a) or any(y["score"] < x["score"] - 1e-6 for x, y in zip(a, b, strict=False))
        for a, b in pairs
    )
    gap = max(
        (
            abs(x["score"] - y["score"])
            for a, b in zip(want, have, strict=True)
            for x, y in zip(a, b, strict=False)
        ),
        default=0.0,
    )
    return {"same_ids": same, "worse": worse, "max_score_difference": gap}


def _timed(client: httpx.Client, system: str, texts: list[str]) -> dict[str, float]:
    """ms of each one-text query after 3 untimed ones (p50, p95), then queries/s of `CLIENTS`
    clients sharing the same queries."""
    path = f"/collections/{COLLECTIONS[system][0]}/query"

    def ask(text: str) -> object:
        return checked(client.post(path, json={"text": text, "top_k": TOP_K}))

    for text in texts[:3]:
        ask(text)
    ms = []
    for text in texts:
        begun = time.perf_counter()
        ask(text)
        ms.append((time.perf_counter() - begun) * 1000)
    summary = report.percentiles(ms)
    return {"p50": summary["p50"], "p95": summary["p95"], "qps": throughput(ask, texts)}


def _paired_record() -> dict[str, Any]:
    """What `_paired` adds to, round after round."""
    return {
        "ms": {system: [] for system in SYSTEMS},
        "server_ms": {system: {"encode": [], "search": []} for system in SYSTEMS},
        "health_ms": {server: [] for server in HEALTH},
    }


def _paired(clients: dict[str, httpx.Client], texts: list[str], record: dict[str, Any]) -> None:
    """ms of each query on each system, the systems asked back to back in an order rotating
    from query to query (after 3 untimed rounds): the client's whole call, and the server's own
    encode and search (Server-Timing); then GET /health of each server, which does no work, so
    its ms are HTTP and (on Ray) Serve's proxy alone. Added to `record` (`_paired_record`)."""

    def ask(system: str, text: str) -> tuple[float, dict[str, float]]:
        path = f"/collections/{COLLECTIONS[system][0]}/query"
        begun = time.perf_counter()
        response = clients[system].post(path, json={"text": text, "top_k": TOP_K})
        ms = (time.perf_counter() - begun) * 1000
        checked(response)
        return ms, server_timing(response.headers["server-timing"])

    def health(client: httpx.Client) -> float:
        begun = time.perf_counter()
        checked(client.get("/health"))
        return (time.perf_counter() - begun) * 1000

    for text in texts[:3]:
        for system in SYSTEMS:
            ask(system, text)
    for i, text in enumerate(texts):
        for system in SYSTEMS[i % len(SYSTEMS) :] + SYSTEMS[: i % len(SYSTEMS)]:
            total, timing = ask(system, text)
            record["ms"][system].append(total)
            for part in ("encode", "search"):
                record["server_ms"][system][part].append(timing[part])
        for server, system in HEALTH.items():
            record["health_ms"][server].append(health(clients[system]))


def server_timing(header: str) -> dict[str, float]:
    """`encode;dur=4.1, search;dur=0.8` (service/api/routes/search.py) as {name: ms}."""
    parts = (part.strip().split(";dur=") for part in header.split(","))
    return {name: float(ms) for name, ms in parts}


def _paired_differences(figures: dict[str, Any], system: str, base: str) -> list[float]:
    """`system`'s ms minus `base`'s on the same query, in the order they were asked."""
    paired = figures["paired_ms"]
    return [a - b for a, b in zip(paired[system], paired[base], strict=True)]


def paired_added(figures: dict[str, Any], system: str, base: str) -> tuple[float, float, float]:
    """Median, first and third quartile of `system`'s ms minus `base`'s on the same query."""
    first, median, third = statistics.quantiles(_paired_differences(figures, system, base), n=4)
    return median, first, third


def paired_by_order(figures: dict[str, Any], system: str, base: str) -> list[float]:
    """The median of `system` minus `base` on the same query for each order of asking: the
    rotation a query was asked in (query i of a round: SYSTEMS rotated by i)."""
    queries = figures["queries"]
    differences: list[list[float]] = [[] for _ in SYSTEMS]
    for i, difference in enumerate(_paired_differences(figures, system, base)):
        differences[(i % queries) % len(SYSTEMS)].append(difference)
    return [statistics.median(d) for d in differences]


def breakdown(figures: dict[str, Any]) -> str:
    """Where each system's ms of a paired query go: the server's encode and search
    (Server-Timing), and the rest (HTTP, Serve's proxy, routing, JSON); and /health alone."""
    median = statistics.median
    parts = []
    for name in SYSTEMS:
        inside = figures["paired_server_ms"][name]
        encode, search = median(inside["encode"]), median(inside["search"])
        rest = median(figures["paired_ms"][name]) - encode - search
        parts.append(f"{LABELS[name].split(' (')[0]}: encode {encode:.1f}, search {search:.1f}, "
                     f"the rest {rest:.1f}")  # fmt: skip
    health = figures["paired_health_ms"]
    return (
        "- where a paired query's ms go (medians; encode and search as the server's "
        "Server-Timing says them, the rest is the whole call less those two): "
        + "; ".join(parts)
        + ". On Ray, encode is a call to the encoder deployment and search a call to each "
        "shard's actor; the rest includes Serve's proxy. GET /health, which does no work: "
        f"single node {median(health['single']):.1f} ms, Ray application "
        f"{median(health['ray']):.1f} ms"
    )


def _median(figures: dict[str, Any], system: str, key: str) -> float:
    return statistics.median(p[key] for p in figures["passes"] if p["system"] == system)


def table(figures: dict[str, Any]) -> str:
    """Each system's answers, latency, queries/s and ingest, against the single node."""
    base = _median(figures, "single", "p50")
    rows = []
    for name in SYSTEMS:
        same = figures["same_as_single"].get(name)
        wide = figures["same_as_single_wide"].get(name)
        rows.append(
            [
                LABELS[name],
                f"{figures['ndcg_at_10'][name] * 100:.2f}",
                "" if same is None else f"{same['same_ids']} ({same['worse']} lower)",
                "" if wide is None else f"{wide['same_ids']} / {wide['max_score_difference']:.1e}",
                f"{_median(figures, name, 'p50'):.1f}",
                f"{_median(figures, name, 'p95'):.1f}",
                f"{_median(figures, name, 'p50') - base:+.1f}",
                f"{_median(figures, name, 'qps'):.0f}",
                f"{figures['ingest'][name]['docs_per_second']:.1f}",
            ]
        )
    rounds = len(figures["passes"]) // len(SYSTEMS)
    memory = figures["resident_bytes"]
    ray, fan_out = paired_added(figures, "ray-1", "single"), paired_added(figures, "ray-2", "ray-1")
    return "\n".join(
        [
            f"SciFact ({figures['documents']:,} abstracts, {figures['queries']} test queries), "
            f"over HTTP on 127.0.0.1, {figures['cores']} cores, {rounds} interleaved rounds "
            "(`bench/results/cluster_http.json`):",
            "",
            report.markdown_table(
                [
                    "system",
                    "nDCG@10",
                    "same top-10 ids as one node (lower at a rank)",
                    f"with {figures['wide_candidates']:,} candidates: same ids / largest "
                    "score difference",
                    "p50 ms",
                    "p95 ms",
                    "p50 added",
                    f"queries/s ({figures['clients']} clients)",
                    "ingest docs/s",
                ],
                rows,
            ),
            "",
            "- same top-10 ids: of the queries, those whose 10 hits are the single node's in "
            "the same order; lower: those with a score below the single node's at some rank. "
            "Shards train their SQ8 codes on every shard's range and the merge keeps the "
            "candidates one index would re-score (docs/SCALING.md), so on the defaults the "
            "answers must be the single node's; with enough candidates for every exact top "
            "10, the kernel alone decides",
            f"- paired ({len(figures['paired_ms']['single'])} queries: each round's test queries "
            "asked of the three systems back to back, the order rotating): on the same query, "
            f"the Ray application with 1 shard adds {ray[0]:+.1f} ms to the single node "
            f"(quartiles {ray[1]:+.1f} to {ray[2]:+.1f}) and a second shard adds "
            f"{fan_out[0]:+.1f} ms (quartiles {fan_out[1]:+.1f} to {fan_out[2]:+.1f}): the medians "
            "of the per-query differences, which the load of the moment moves less than the "
            "p50 added column (a difference of medians over separate passes). The order of "
            "asking matters: a second shard's median for each of the three orders is "
            + ", ".join(f"{ms:+.1f}" for ms in paired_by_order(figures, "ray-2", "ray-1"))
            + " ms",
            breakdown(figures),
            f"- resident memory at the end: single-node server {memory['single'] / 2**20:,.0f} "
            "MiB; the Ray application with its local Ray (every process) "
            f"{memory['ray'] / 2**20:,.0f} MiB",
        ]
    )


def markdown(figures: dict[str, Any]) -> str:
    return report.page(
        "The REST API on Ray Serve against the single-node server",
        "`python -m bench cluster-http`: see bench/cluster_http.py for what runs.",
        [table(figures), ""],
        figures["passes"],
    )


PLAN_DOCUMENTS = 100_000_000
SHARD_DOCUMENTS = 10_000_000
"""Documents per shard in the plan: about where one node stops (docs/SCALING.md, part 1)."""
PLAN_QPS = 1000
"""The query rate the plan sizes encoder replicas for."""


def plan(figures: dict[str, Any]) -> str:
    """The sharded half of the 100-million plan, from this run's figures."""
    two = figures["described"]["ray-2"]
    shards = PLAN_DOCUMENTS // SHARD_DOCUMENTS
    per_node_qps = _median(figures, "ray-1", "qps")
    fan_out = paired_added(figures, "ray-2", "ray-1")[0]
    ray_cost = paired_added(figures, "ray-1", "single")[0]

    def gb(bytes_per_document: float) -> str:
        return f"{bytes_per_document * SHARD_DOCUMENTS / 1e9:,.1f} GB"

    rows = [
        ["shards of 10,000,000 documents", f"{shards}"],
        [
            "a shard's files (documents, raw vectors, index)",
            f"{two['disk_bytes_per_document']:,.0f} bytes per abstract: "
            f"{gb(two['disk_bytes_per_document'])}",
        ],
        [
            "a shard's index in memory",
            f"{two['index_bytes_per_vector']:,.0f} bytes per vector: "
            f"{gb(two['index_bytes_per_vector'])}",
        ],
        [
            "raw vectors that re-scoring reads (mapped)",
            f"{two['raw_bytes_per_vector']:,} bytes per vector: {gb(two['raw_bytes_per_vector'])}",
        ],
        [
            f"queries/s of one 2-core node with one encoder replica ({figures['clients']} clients)",
            f"{per_node_qps:.0f}",
        ],
        [
            f"encoder replicas of 2 cores for {PLAN_QPS:,} queries/s (the row above scaled: "
            "an estimate)",
            f"{PLAN_QPS / per_node_qps:.0f}",
        ],
        [
            "p50 the Ray application adds to a query (1 shard against one node, paired)",
            f"{ray_cost:+.1f} ms",
        ],
        ["p50 a second shard adds (2 shards against 1, paired)", f"{fan_out:+.1f} ms"],
    ]
    return "\n".join(
        [
            f"{PLAN_DOCUMENTS:,} SciFact-like abstracts, from `bench/results/cluster_http.json` "
            f"({figures['documents']:,} abstracts in 2 shards, {figures['cores']} cores):",
            "",
            report.markdown_table(["", "figure"], rows),
        ]
    )
