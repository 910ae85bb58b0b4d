"""Speed benchmark: the real server on Reuters sentences, measured from outside over HTTP.

For each size it times bare `Encoder.encode` on the same texts first (the ceiling of any ingest),
then starts `python -m service` on 127.0.0.1 with a fresh data directory and measures what a user
sees: ingest through a background job, query latency for one text and for batches of 32, queries/s
with concurrent clients, the server's resident memory, bytes on disk, and the compression report
(recall@10 and latency of each k × index spec). With `--compare-batching` the server is restarted
on the same data with query micro-batching off, so the concurrent-clients table has both columns
from one run. Figures go to speed_<size>[_<backend>].json; speed.md is rebuilt from every such
file in the output folder, so a 10,000 run and a later 100,000 run end up side by side.

This module is the command and one size's run; bench.speed_plan says what it runs with,
bench.speed_local and bench.speed_http measure, bench.speed_report writes speed.md.
"""

import argparse
import dataclasses
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import context, data, report, speed_report
from bench.live import LiveServer
from bench.speed_http import checked, compression_report, concurrent, ingest, latency
from bench.speed_local import bare_encode, fit_split
from bench.speed_plan import (
    FULL,
    SMOKE,
    Plan,
    bare_encoder,
    batching_configs,
    describe_batching,
    server_default,
    server_settings,
)
from bench.speed_report import BATCH, COLLECTION, REPORT_KS, REPORT_SPECS
from index.encoder import BACKENDS, Encoder

log = logging.getLogger(__name__)

SIZES = (10_000, 100_000)
SMOKE_SIZE = 100
CLIENTS = (1, 4, 16)


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
        "batch_size": args.batch_size,
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
