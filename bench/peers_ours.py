"""Ours in the peers benchmark: the real HTTP service, refitted to exact cosine, then embedded.

The service runs on its defaults (bench.live.LiveServer), is refitted without re-encoding to
k=d, Flat, no re-scoring, and that collection is then queried in process through the embedded
driver, so the table shows what HTTP costs beside the same answers.
"""

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import data, report
from bench.drivers.driver import throughput
from bench.live import LiveServer, wait_job
from bench.peers_data import SHARED, TOP_K, WARMUP, Bench, Result, score
from bench.peers_drivers import run_driver
from bench.speed_http import server_timing
from index.report import disk_bytes
from service.config import ENV_PREFIX

log = logging.getLogger(__name__)

COLLECTION = "scifact"
POLL_SECONDS = 0.5
"""How often the ingest job is polled: at 50 ms the polling itself slowed the server's encoding."""
JOB_PHASES = ("encode_seconds", "index_seconds", "fit_seconds")
"""The ingest job's own accounts of its time (service.jobs.Job), kept with the row."""


def ours(bench: Bench, work: Path, args: argparse.Namespace) -> list[Result]:
    """The service over HTTP on its defaults, then refitted to exact cosine; then embedded."""
    data_dir = work / "ours"
    settings = {"model": args.model} if args.model else {}
    if bench.shared_encoder:
        settings |= SHARED.server_settings()
    server = LiveServer(data_dir, work / "server.log", inherit_settings=True, **settings)
    passed_on = sorted(k for k in os.environ if k.startswith(ENV_PREFIX) and k != data.ENV_VAR)
    log.info("ours: starting the server (passing on %s)", passed_on or "no settings")
    server.start()
    try:
        with server.client(timeout=600) as client:
            default, exact = _serve(bench, client, data_dir)
        rss = server.peak_rss()
        server.stop()
    finally:
        server.close()
    for result in (default, exact):
        result.peak_rss_bytes = rss
        result.notes["server_settings_passed_on"] = passed_on
        result.notes["server_settings"] = settings
    job = {"workdir": str(data_dir), "collection": COLLECTION, "documents": None}
    env = server.env() | {f"{ENV_PREFIX}DATA_DIR": str(data_dir)}
    figures = run_driver(bench, "embedded", sys.executable, job, work, env)
    setting = figures["settings"][0]
    embedded = score(
        bench,
        Result(
            system="ours, embedded (Engine in process, no HTTP)",
            setting=exact.setting,
            documents=len(bench.doc_ids),
            rankings=setting["rankings"],
            seconds=setting["seconds"],
            peak_rss_bytes=figures["peak_rss_bytes"],
            disk_bytes=None,
            notes={"versions": figures["versions"], **setting.get("inner", {})},
        ),
    )
    same = sum(a == b for a, b in zip(embedded.rankings, exact.rankings, strict=True))
    embedded.notes["same_rankings_as_http"] = same / len(exact.rankings)
    return [default, exact, embedded]


def _ingest(bench: Bench, client: httpx.Client) -> tuple[float, dict[str, float], dict[str, Any]]:
    """Create the collection with the server's defaults and ingest every document in one
    background job, polled every POLL_SECONDS; its seconds (until done: fit and index included),
    the job's own encode, index and fit seconds (where the time went) and the collection's
    description."""
    _check(client.post("/collections", json={"name": COLLECTION}))
    documents = [
        {"id": doc_id, "text": text}
        for doc_id, text in zip(bench.doc_ids, bench.documents, strict=True)
    ]
    n = len(documents)
    log.info("ours: ingesting %d documents over HTTP", n)
    started = time.perf_counter()
    accepted = _check(
        client.post(f"/collections/{COLLECTION}/ingest", json={"documents": documents})
    )
    job = wait_job(
        client, accepted["job"]["id"], timeout=bench.deadline_seconds, interval=POLL_SECONDS
    )
    ingest_seconds = time.perf_counter() - started
    if job["state"] != "done":
        raise RuntimeError(f"ours: ingest job failed: {job}")
    log.info(
        "ours: ingested in %s (%.1f docs/s)",
        report.format_seconds(ingest_seconds),
        n / ingest_seconds,
    )
    phases = {f"job_{name}": job[name] for name in JOB_PHASES}
    return ingest_seconds, phases, _check(client.get(f"/collections/{COLLECTION}"))


def _rescoring(settings: dict[str, Any]) -> str:
    """How the collection re-scores, as the table says it (the setting, not the old default)."""
    space = settings["rescore"]
    if space == "off":
        return "no re-scoring"
    if space == "kernel" and settings["beta"] == settings["gamma"] == 0:
        return "candidates re-scored by kernel cosine (β=γ=0, all dimensions: raw cosine)"
    return f"candidates re-scored by {space} cosine"


def _serve(bench: Bench, client: httpx.Client, data_dir: Path) -> tuple[Result, Result]:
    """Ingest, query on the defaults, refit to exact cosine, query again: both rows, scored."""
    ingest_seconds, phases, info = _ingest(bench, client)
    described = f"service defaults: k={info['k']}, {info['settings']['index_spec']}, " + _rescoring(
        info["settings"]
    )
    default = _query_pass(bench, client, described)
    default.ingest_seconds = ingest_seconds
    default.notes.update(phases)
    default.disk_bytes = disk_bytes(data_dir / COLLECTION)
    exact = {"beta": 0, "gamma": 0, "k": info["dimension"], "index_spec": "Flat", "rescore": False}
    started = time.perf_counter()
    _check(client.post(f"/collections/{COLLECTION}/fit", json=exact))
    refit_seconds = time.perf_counter() - started
    refitted = _query_pass(
        bench,
        client,
        f"refitted (no re-encoding) to k={info['dimension']}, Flat, no re-scoring: exact cosine",
    )
    refitted.disk_bytes = disk_bytes(data_dir / COLLECTION)
    refitted.notes["refit_seconds"] = refit_seconds
    return score(bench, default), score(bench, refitted)


def _query_pass(bench: Bench, client: httpx.Client, setting: str) -> Result:
    """Every query alone over HTTP, timed at the client, then all of them from
    bench.drivers.driver.CLIENTS clients at once (queries/s), as the peers' servers are measured;
    the server's own split of a query in the notes."""
    path = f"/collections/{COLLECTION}/query"
    for text in bench.queries[:WARMUP]:
        _check(client.post(path, json={"text": text, "top_k": TOP_K}))
    seconds, rankings, server_ms = [], [], []
    for text in bench.queries:
        started = time.perf_counter()
        response = client.post(path, json={"text": text, "top_k": TOP_K})
        seconds.append(time.perf_counter() - started)
        hits = _check(response)["results"][0]["hits"]
        rankings.append([hit["id"] for hit in hits])
        timing = server_timing(response.headers.get("server-timing", ""))
        server_ms.append([timing.get("encode", float("nan")), timing.get("search", float("nan"))])
    encode_ms, search_ms = np.median(np.asarray(server_ms), axis=0)
    per_s = throughput(
        lambda text: _check(client.post(path, json={"text": text, "top_k": TOP_K})), bench.queries
    )
    return Result(
        system="ours, HTTP service",
        setting=setting,
        http=True,
        documents=len(bench.doc_ids),
        rankings=rankings,
        seconds=seconds,
        peak_rss_bytes=None,
        disk_bytes=None,
        notes={
            "encode_ms_p50": encode_ms,
            "search_ms_p50": search_ms,
            "queries_per_s": per_s,
        },
    )


def _check(response: httpx.Response) -> Any:
    """The JSON of a response (None when empty); RuntimeError with method, path, status, body."""
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:2000]}"
        )
    return response.json() if response.content else None
