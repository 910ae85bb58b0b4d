"""Load run: sustained queries from a few client threads against the real server on 127.0.0.1
while background ingest jobs keep writing to the same collection, for a bounded time.

Reports queries/s, latency percentiles, errors (0 expected: a query must never fail because of a
write) and the server's resident memory at the start (after 30 warm-up queries) and at the end:
what grows between is the data ingested meanwhile, which the table shows beside it.
Texts are generated from a seeded vocabulary, so the run needs no data folder.
"""

import argparse
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import report
from bench.live import LiveServer

log = logging.getLogger(__name__)

NAME = "load"
SUBJECTS = ["The committee", "A farmer", "The central bank", "Our team", "A sailor", "A nurse"]
VERBS = ["discussed", "reported on", "photographed", "worried about", "wrote about", "studied"]
OBJECTS = ["the harvest", "interest rates", "a storm at sea", "the final match", "a new vaccine"]
PLACES = ["in the capital", "near the coast", "on Monday", "after the meeting", "at dawn"]


@dataclass(frozen=True)
class Plan:
    seconds: float
    clients: int
    seed_documents: int
    job_documents: int


@dataclass
class Figures:
    """What one run measured; written as JSON beside the Markdown table."""

    smoke: bool
    plan: dict[str, Any]
    backend: str = ""
    queries: int = 0
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    seconds: float = 0.0
    queries_per_second: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    documents_ingested: int = 0
    ingest_jobs: int = 0
    count_start: int = 0
    count_end: int = 0
    rss_start_mib: float = 0.0
    rss_end_mib: float = 0.0
    rss_samples: list[tuple[float, float]] = field(default_factory=list)  # (s into the run, MiB)
    peak_rss_mib: float = 0.0
    cpus: int = 0
    load_average: tuple[float, float] = (0.0, 0.0)  # 1-minute, at the start and the end


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the load (default 3)")
    parser.add_argument("--clients", type=int, default=3, help="query threads (default 3)")
    parser.add_argument("--job-documents", type=int, default=2000, help="documents per ingest job")


def run(args: argparse.Namespace) -> int:
    plan = (
        Plan(seconds=8, clients=2, seed_documents=64, job_documents=64)
        if args.smoke
        else Plan(args.minutes * 60, args.clients, 1000, args.job_documents)
    )
    out = Path(args.out) if args.out else report.RESULTS_DIR
    workdir = Path(tempfile.mkdtemp(prefix="whitened-load-"))
    try:
        figures = measure(plan, workdir, args.smoke)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.write_json(out / "load.json", asdict(figures))
    path = report.write_text(out / "load.md", markdown(figures))
    log.info("load: %s", path)
    return 0 if figures.errors == 0 else 1


def texts(rng: random.Random, n: int) -> list[str]:
    return [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(PLACES)}."
        for _ in range(n)
    ]


def measure(plan: Plan, workdir: Path, smoke: bool) -> Figures:
    figures = Figures(smoke=smoke, plan=asdict(plan))
    server = LiveServer(workdir / "data", workdir / "server.log", inherit_settings=True)
    server.start()
    rng = random.Random(20261201)
    try:
        with server.client() as client:
            create = {"name": NAME} | ({"k": 32} if smoke else {})  # a kernel fits 64 documents
            assert client.post("/collections", json=create).status_code == 201
            for start in range(0, plan.seed_documents, 500):
                batch = texts(rng, min(500, plan.seed_documents - start))
                documents = [{"text": t} for t in batch]
                added = client.post(f"/collections/{NAME}/documents", json={"documents": documents})
                added.raise_for_status()
            info = client.get(f"/collections/{NAME}").json()
            figures.count_start, figures.backend = info["count"], info.get("backend", "")
            for text in texts(rng, 30):  # warm-up: first queries allocate the encoder's buffers
                client.post(f"/collections/{NAME}/query", json={"text": text}).raise_for_status()
        figures.rss_start_mib = server.rss() / 2**20
        load_start = os.getloadavg()[0]
        latencies, errors = _load(server, plan, rng, figures)
        figures.rss_end_mib = server.rss() / 2**20
        figures.load_average = (load_start, os.getloadavg()[0])
        figures.cpus = os.cpu_count() or 0
        figures.peak_rss_mib = server.peak_rss() / 2**20
        with server.client() as client:
            figures.count_end = client.get(f"/collections/{NAME}").json()["count"]
        server.stop()
    finally:
        server.close()
    figures.queries = len(latencies) + len(errors)
    figures.errors = len(errors)
    figures.error_examples = errors[:5]
    if latencies:
        ms = np.asarray(latencies) * 1000
        figures.p50_ms, figures.p99_ms = (float(v) for v in np.percentile(ms, [50, 99]))
        figures.max_ms = float(ms.max())
    figures.queries_per_second = figures.queries / figures.seconds if figures.seconds else 0.0
    return figures


def _load(
    server: LiveServer, plan: Plan, rng: random.Random, figures: Figures
) -> tuple[list[float], list[str]]:
    """Query threads for plan.seconds while ingest jobs run back to back; latencies, errors."""
    stop = threading.Event()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    query_texts = texts(rng, 500)

    def query(seed: int) -> None:
        picks = random.Random(seed)
        with server.client() as client:
            while not stop.is_set():
                body = {"text": picks.choice(query_texts), "top_k": 10}
                started = time.perf_counter()
                try:
                    response = client.post(f"/collections/{NAME}/query", json=body)
                    ok = response.status_code == 200 and bool(response.json()["results"][0]["hits"])
                    problem = "" if ok else f"{response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    problem = repr(exc)
                seconds = time.perf_counter() - started
                with lock:
                    (errors.append(problem) if problem else latencies.append(seconds))

    threads = [threading.Thread(target=query, args=(i,)) for i in range(plan.clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    with server.client() as client:
        deadline = started + plan.seconds
        while time.perf_counter() < deadline:
            documents = [{"text": t} for t in texts(rng, plan.job_documents)]
            submitted = client.post(f"/collections/{NAME}/ingest", json={"documents": documents})
            submitted.raise_for_status()
            job_id = submitted.json()["job"]["id"]
            figures.ingest_jobs += 1
            while True:
                now = time.perf_counter() - started
                if not figures.rss_samples or now - figures.rss_samples[-1][0] >= 2:
                    figures.rss_samples.append((now, server.rss() / 2**20))
                job = client.get(f"/jobs/{job_id}").json()
                if job["state"] in ("done", "failed") or time.perf_counter() > deadline:
                    break
                time.sleep(0.2)
            figures.documents_ingested += job["processed"]
            if job["state"] == "failed":
                errors.append(f"ingest job failed: {job['error']}")
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    figures.seconds = time.perf_counter() - started
    log.info("load: %d queries, %d errors", len(latencies) + len(errors), len(errors))
    return latencies, errors


def markdown(f: Figures) -> str:
    plan = f.plan
    start, end = f.load_average
    seconds = f.plan["seconds"]
    quarter = next((mib for t, mib in f.rss_samples if t >= seconds / 4), f.rss_end_mib)
    title = "# Load run" + (" — SMOKE RUN, numbers not meaningful" if f.smoke else "")
    rows = [
        ["encoder backend", f.backend],
        ["queries answered", f"{f.queries - f.errors:,}"],
        ["errors", f"{f.errors}"],
        ["queries/s", f"{f.queries_per_second:.1f}"],
        ["latency p50 / p99 / max (ms)", f"{f.p50_ms:.1f} / {f.p99_ms:.1f} / {f.max_ms:.1f}"],
        ["documents ingested meanwhile", f"{f.documents_ingested:,} in {f.ingest_jobs} job(s)"],
        ["collection size start → end", f"{f.count_start:,} → {f.count_end:,}"],
        ["server RSS start → end (MiB)", f"{f.rss_start_mib:.0f} → {f.rss_end_mib:.0f}"],
        ["server RSS at ¼ of the run → end (MiB)", f"{quarter:.0f} → {f.rss_end_mib:.0f}"],
        ["server peak RSS (MiB)", f"{f.peak_rss_mib:.0f}"],
        ["machine: cores, load average start → end", f"{f.cpus}, {start:.1f} → {end:.1f}"],
    ]
    return "\n".join(
        [
            title,
            "",
            f"`python -m bench load{' --smoke' if f.smoke else ''}`: {plan['clients']} query "
            f"threads for {plan['seconds']:.0f} s against `python -m service` on 127.0.0.1 (the "
            "bundled model, default settings and the WHITENED_SEARCH_* variables of the shell), "
            f"while ingest jobs of {plan['job_documents']:,} generated sentences run back to "
            "back into the same collection "
            f"(seeded with {plan['seed_documents']:,}). One query = one text, top_k 10, "
            "encoded by the server; latency is measured by the client, over HTTP.",
            "",
            report.markdown_table(["measure", "value"], rows),
            "",
        ]
    )
