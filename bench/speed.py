"""Speed benchmark: the real server on Reuters sentences, measured from outside over HTTP.

For each size it times bare `Encoder.encode` on the same texts first (the ceiling of any ingest),
then starts `python -m service` on 127.0.0.1 with a fresh data directory and measures what a user
sees: ingest through a background job, query latency for one text and for batches of 32, queries/s
with concurrent clients, the server's resident memory, bytes on disk, and the compression report
(recall@10 and latency of each k × index spec). With `--compare-batching` the server is restarted
on the same data with query micro-batching off, so the concurrent-clients table has both columns
from one run. Figures go to speed_<size>[_<backend>].json; speed.md is rebuilt from every such
file in the output folder, so a 10,000 run and a later 100,000 run end up side by side.
"""

import argparse
import dataclasses
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import context, data, report, speed_report
from bench.live import LiveServer
from bench.speed_report import BATCH, COLLECTION, REPORT_KS, REPORT_SPECS
from index.collection import Collection
from index.encoder import BACKENDS, Encoder
from index.kernel import WhiteningKernel
from index.vector_index import VectorIndex
from service.config import ServerSettings

log = logging.getLogger(__name__)

SIZES = (10_000, 100_000)
SMOKE_SIZE = 100
CLIENTS = (1, 4, 16)
TOP_K = 10


@dataclasses.dataclass(frozen=True)
class Plan:
    """How much of each measurement a run makes: full runs, or a smoke run that only checks."""

    single_queries: int
    batches: int
    bare_queries: int
    seconds: float
    pool: int
    poll: float
    report_queries: int


FULL = Plan(
    single_queries=200,
    batches=20,
    bare_queries=50,
    seconds=20.0,
    pool=2048,
    poll=0.5,
    report_queries=200,
)
SMOKE = Plan(
    single_queries=5, batches=2, bare_queries=3, seconds=0.5, pool=40, poll=0.05, report_queries=20
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        help=f"corpus sizes (first N Reuters sentences; default {' '.join(map(str, SIZES))})",
    )
    parser.add_argument(
        "--bare-sample",
        type=int,
        help="time bare encode on the first N texts only (default: all of them, as long as "
        "the ingest itself)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="encoder backend of the server and of bare encode (default: the server's)",
    )
    parser.add_argument(
        "--query-batch-ms",
        type=float,
        help="query micro-batching window: WHITENED_SEARCH_QUERY_BATCH_MS (if given; 0 = off)",
    )
    parser.add_argument(
        "--compare-batching",
        action="store_true",
        help="measure the concurrent clients again after a restart with query batching off",
    )
    parser.add_argument(
        "--clients", type=int, nargs="+", help=f"concurrent clients (default {CLIENTS})"
    )
    parser.add_argument("--seconds", type=float, help="seconds per concurrency level")
    parser.add_argument(
        "--no-default-report",
        action="store_true",
        help="skip timing the compression report with its default settings (issue 8's check)",
    )
    parser.add_argument("--work-dir", help="where the temporary data directory goes")
    parser.set_defaults(batch_size=None)  # None: the server's own default, for both sides


def run(args: argparse.Namespace) -> int:
    ctx = context.from_args(args)
    plan = SMOKE if args.smoke else FULL
    if args.seconds is not None:
        plan = dataclasses.replace(plan, seconds=args.seconds)
    sizes = [SMOKE_SIZE] if args.smoke else (args.sizes or list(SIZES))
    encoder = bare_encoder(args)
    for size in sizes:
        figures = measure(size, args, plan, ctx.root, encoder)
        report.write_json(ctx.out / f"speed_{run_label(size, args.backend)}.json", figures)
        speed_report.write_markdown(ctx.out)
    return 0


def run_label(size: int, backend: str | None) -> str:
    return f"{size}" if backend is None else f"{size}_{backend}"


# ---- what the server runs with ----------------------------------------------------------------


def server_default(name: str) -> Any:
    """The server's default of a setting."""
    return ServerSettings.model_fields[name].default


def batch_size(args: argparse.Namespace) -> int:
    """`--batch-size`, else the server's default: bare encode and the server use the same."""
    return int(args.batch_size or server_default("batch_size"))


def bare_encoder(args: argparse.Namespace) -> Encoder:
    """The encoder the server runs: same model, batch size and backend."""
    backend = args.backend or server_default("backend")
    return Encoder(args.model, batch_size=batch_size(args), backend=backend)


def server_settings(args: argparse.Namespace, batch_ms: float | None) -> dict[str, Any]:
    """WHITENED_SEARCH_* of the child: only what this run sets, so older servers still start."""
    settings: dict[str, Any] = {"batch_size": batch_size(args), "max_body_bytes": 512 * report.MiB}
    if args.model:
        settings["model"] = args.model
    if args.backend:
        settings["backend"] = args.backend
    if batch_ms is not None:
        settings["query_batch_ms"] = batch_ms
    return settings


def batching_configs(args: argparse.Namespace) -> list[float | None]:
    """Query-batching windows to measure: as given (None: the server's default), then off."""
    first = args.query_batch_ms
    if not args.compare_batching:
        return [first]
    return [first, 0.0] if first != 0 else [0.0]


def describe_batching(batch_ms: float | None) -> str:
    if batch_ms is None:
        return "server default (by backend)"
    return "off" if batch_ms == 0 else f"{batch_ms:g} ms"


# ---- one size ---------------------------------------------------------------------------------


def measure(
    size: int, args: argparse.Namespace, plan: Plan, root: Path, encoder: Encoder
) -> dict[str, Any]:
    texts = data.load_reuters_sentences(root, limit=size + plan.pool)
    if len(texts) < size + plan.pool:
        raise ValueError(
            f"{len(texts)} Reuters sentences: {size} documents and {plan.pool} queries need more"
        )
    corpus, pool = texts[:size], texts[size:]
    figures: dict[str, Any] = {
        "size": size,
        "smoke": bool(args.smoke),
        "model": encoder.model_id,
        "batch_size": batch_size(args),
        "ingest_chunk": server_default("ingest_chunk"),
        "backend": args.backend,
        "backend_used": args.backend or server_default("backend"),
        "bare_backend": encoder.backend,
        "query_batch_ms": args.query_batch_ms,
        "cpus": os.cpu_count(),
        "load_average_start": os.getloadavg(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "plan": dataclasses.asdict(plan),
    }
    timings = report.Timings()
    log.info("%d sentences: bare encode", size)
    with timings.phase("bare encode"):
        figures["bare"] = bare_encode(encoder, corpus[: args.bare_sample or size], pool, plan)
    work = Path(tempfile.mkdtemp(prefix="speed-", dir=args.work_dir))
    try:
        configs = batching_configs(args)
        figures["runs"] = []
        for number, batch_ms in enumerate(configs):
            server = LiveServer(
                work / "data", work / "server.log", **server_settings(args, batch_ms)
            )
            log.info(
                "%d sentences: server with query batching %s", size, describe_batching(batch_ms)
            )
            started = time.perf_counter()
            with timings.phase("server start"):
                server.start(timeout=300)
            try:
                run_figures: dict[str, Any] = {
                    "query_batch_ms": batch_ms,
                    "batching": describe_batching(batch_ms),
                    "start_seconds": time.perf_counter() - started,
                }
                with httpx.Client(base_url=server.url, timeout=900) as client:
                    if number == 0:
                        figures.update(first_run(client, server, corpus, pool, plan, args, timings))
                    with timings.phase("single queries"):
                        run_figures["single"] = latency(client, pool, plan.single_queries, 1)
                    with timings.phase("concurrent clients"):
                        run_figures["concurrent"] = [
                            concurrent(server.url, pool, clients, plan.seconds)
                            for clients in (args.clients or CLIENTS)
                        ]
                    run_figures["rss_bytes"] = server.rss()
                    run_figures["peak_rss_bytes"] = server.peak_rss()
                server.stop()  # a clean shutdown (checkpoint, unlock) is part of the run
            finally:
                server.close()  # after a failure: kill it, keep the failure's own message
            figures["runs"].append(run_figures)
        with timings.phase("fit split"):
            figures["fit_split"] = fit_split(work / "data" / COLLECTION, figures["collection"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["load_average_end"] = os.getloadavg()
    figures["phase_seconds"] = timings.seconds
    log.info("%d sentences done: %s", size, timings.markdown())
    return figures


def first_run(
    client: httpx.Client,
    server: LiveServer,
    corpus: Sequence[str],
    pool: Sequence[str],
    plan: Plan,
    args: argparse.Namespace,
    timings: report.Timings,
) -> dict[str, Any]:
    """Ingest, then everything measured once: memory, disk, batch latency, compression report."""
    with timings.phase("ingest"):
        out: dict[str, Any] = {"ingest": ingest(client, corpus, plan.poll)}
    out["collection"] = checked(client.get(f"/collections/{COLLECTION}"))
    out["rss_after_ingest_bytes"] = server.rss()
    with timings.phase("batch queries"):
        out["batch"] = latency(client, pool, plan.batches, BATCH)
    body = {
        "ks": list(REPORT_KS),
        "specs": list(REPORT_SPECS),
        "rescore": [False, True],
        "n_queries": plan.report_queries,
    }
    with timings.phase("report"):
        out["report"] = compression_report(client, body)
    if not args.no_default_report:
        with timings.phase("default report"):
            out["default_report"] = compression_report(client, {"n_queries": plan.report_queries})
    return out


def checked(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    return response.json()


# ---- bare encode ------------------------------------------------------------------------------


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
    out = []
    for i in range(times):
        started = time.perf_counter()
        call(i)
        out.append(1000 * (time.perf_counter() - started))
    return out


def percentiles(ms: Sequence[float]) -> dict[str, float]:
    values = np.asarray(ms, dtype=np.float64)
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": p50, "p95": p95, "p99": p99, "mean": values.mean(), "n": len(values)}


# ---- over HTTP --------------------------------------------------------------------------------


def ingest(client: httpx.Client, corpus: Sequence[str], poll: float) -> dict[str, Any]:
    """Create the collection (server defaults) and ingest the corpus as one background job."""
    checked(client.post("/collections", json={"name": COLLECTION}))
    documents = [{"id": f"r{i}", "text": text} for i, text in enumerate(corpus)]
    body = json.dumps({"documents": documents}).encode()
    load = os.getloadavg()
    started = time.perf_counter()
    response = client.post(
        f"/collections/{COLLECTION}/ingest",
        content=body,
        headers={"content-type": "application/json"},
    )
    job = checked(response)["job"]
    while job["state"] not in ("done", "failed"):
        time.sleep(poll)
        job = checked(client.get(f"/jobs/{job['id']}"))
    seconds = time.perf_counter() - started
    if job["state"] != "done" or not job["fitted"]:
        raise RuntimeError(f"ingest job ended {job['state']}: {job['error'] or job['fit_error']}")
    return {
        "documents": len(corpus),
        "load_average": (load, os.getloadavg()),
        "body_bytes": len(body),
        "seconds": seconds,
        "docs_per_second": len(corpus) / seconds,
        "job": job,
    }


def server_timing(header: str) -> dict[str, float]:
    """{"encode": ms, "search": ms} from a Server-Timing header."""
    out = {}
    for part in header.split(","):
        name, _, duration = part.strip().partition(";dur=")
        if duration:
            out[name] = float(duration)
    return out


def latency(client: httpx.Client, pool: Sequence[str], times: int, batch: int) -> dict[str, Any]:
    """Sequential queries of `batch` texts each (1: the `text` field), after 3 warm-up calls."""

    def body(i: int) -> dict[str, Any]:
        if batch == 1:
            return {"text": pool[i % len(pool)], "top_k": TOP_K}
        return {"texts": [pool[(i * batch + j) % len(pool)] for j in range(batch)], "top_k": TOP_K}

    path = f"/collections/{COLLECTION}/query"
    for i in range(3):
        checked(client.post(path, json=body(times + i)))
    wall, encode, search = [], [], []
    for i in range(times):
        started = time.perf_counter()
        response = client.post(path, json=body(i))
        wall.append(1000 * (time.perf_counter() - started))
        checked(response)
        timing = server_timing(response.headers.get("server-timing", ""))
        encode.append(timing.get("encode", float("nan")))
        search.append(timing.get("search", float("nan")))
    return {
        "batch": batch,
        "wall_ms": percentiles(wall),
        "encode_ms": percentiles(encode),
        "search_ms": percentiles(search),
    }


def concurrent(url: str, pool: Sequence[str], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` threads, each with its own connection, sending single queries back to back for
    `seconds`; queries/s counts the answers over the time from the start to the last answer.
    The clock starts once every client has connected and had its warm-up query answered."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    ends = [0.0] * clients
    clock = [0.0, 0.0]  # start, deadline: set by the last client to reach the barrier

    def start_clock() -> None:
        clock[0] = time.perf_counter()
        clock[1] = clock[0] + seconds

    ready = threading.Barrier(clients, action=start_clock)
    path = f"/collections/{COLLECTION}/query"

    def worker(number: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            try:
                checked(client.post(path, json={"text": pool[number % len(pool)], "top_k": TOP_K}))
            except BaseException:
                ready.abort()  # the other clients stop waiting for this one
                raise
            ready.wait()
            i = number
            while time.perf_counter() < clock[1]:
                started = time.perf_counter()
                try:
                    response = client.post(path, json={"text": pool[i % len(pool)], "top_k": TOP_K})
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies[number].append(1000 * (time.perf_counter() - started))
                else:
                    errors[number] += 1
                i += clients
            ends[number] = time.perf_counter()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if ready.broken:
        raise RuntimeError("a client's warm-up query failed (its traceback is above)")
    elapsed = max(ends) - clock[0]
    answered = [ms for per_client in latencies for ms in per_client]
    return {
        "clients": clients,
        "seconds": elapsed,
        "queries": len(answered),
        "errors": sum(errors),
        "queries_per_second": len(answered) / elapsed,
        "ms": percentiles(answered) if answered else None,
    }


def compression_report(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """POST /collections/{name}/report, timed from outside (the call blocks until it is done)."""
    started = time.perf_counter()
    result = checked(client.post(f"/collections/{COLLECTION}/report", json=body))
    return {
        "request": body,
        "wall_seconds": time.perf_counter() - started,
        "server_seconds": result["seconds"],
        "n_queries": result["n_queries"],
        "rows": result["rows"],
    }


# ---- kernel fit and index build, apart --------------------------------------------------------


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
