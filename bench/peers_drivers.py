"""Running a system's driver: bench/drivers/<name>_driver.py in its own environment, on a job.

A driver gets a JSON job (model, chunk, queries, where to work) and writes its rankings and
timings back; the peers run theirs in their own virtual environment, ours in this one
(bench.peers_ours), so every system is timed by the same kind of process.
"""

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import report
from bench.peers_data import CHUNK, SHARED, TOP_K, WARMUP, Bench, Result, score
from bench.peers_env import Peer
from index.report import disk_bytes

log = logging.getLogger(__name__)

DRIVERS = Path(__file__).resolve().parent / "drivers"

ENCODER_SAMPLE = 1024
"""The corpus's first documents the encoder alone encodes as an ingest chunk, for its docs/s:
32 batches of the shared encoder's 32, a few seconds of sentences or half a minute of abstracts,
as it runs twice after every pass."""


def drive_peer(bench: Bench, peer: Peer, work: Path, args: argparse.Namespace) -> list[Result]:
    """Ingest, query and measure one peer in its own environment, from a fresh directory."""
    workdir = work / peer.name
    documents = bench.write_documents(work.parent / "documents.jsonl")
    job: dict[str, Any] = {"workdir": str(workdir), "documents": str(documents)}
    if bench.shared_encoder:
        job |= SHARED.job()
    log.info("%s: ingesting %d documents", peer.name, len(bench.doc_ids))
    env = dict(os.environ)
    if peer.chroma_model:
        env["HOME"] = str(peer.user_home(args.peers_dir))
    python = str(peer.python(args.peers_dir))
    figures = run_driver(bench, peer.driver, python, job, work, env)
    size = disk_bytes(workdir)
    results = _results(bench, peer.name, figures, size)
    if peer.http and not bench.shared_encoder:
        log.info("%s: querying its own server over HTTP", peer.name)
        served = {"workdir": str(workdir), "documents": None, "http": True}
        figures = run_driver(bench, peer.driver, python, served, work / "http", env)
        results += _results(bench, f"{peer.name}, HTTP", figures, size)
    return results


def encoder_alone(bench: Bench, work: Path, path: str = "shared") -> dict[str, float]:
    """The shared encoder by itself in a process of its own (bench/drivers/encoder_driver.py),
    the peers' way or (`path` "ours") through ours' encoder: its docs/s on the corpus's first
    ENCODER_SAMPLE documents and its p50 ms over the queries, to read a pass's ingest and query
    latency against; keys `[ours_]encoder_alone_docs_per_s`, `..._ms_p50`, and how many
    documents it encoded."""
    work.mkdir(parents=True, exist_ok=True)
    sample = bench.write_documents(work / "sample.jsonl", ENCODER_SAMPLE)
    job = {"workdir": str(work), "documents": str(sample), "path": path, **SHARED.job()}
    figures = run_driver(bench, "encoder", sys.executable, job, work)
    prefix = "ours_" if path == "ours" else ""
    seconds = figures["settings"][0]["seconds"]
    return {
        "encoder_alone_documents": figures["documents"],
        f"{prefix}encoder_alone_docs_per_s": figures["documents"] / figures["ingest_seconds"],
        f"{prefix}encoder_alone_ms_p50": 1000 * statistics.median(seconds),
    }


def _results(bench: Bench, system: str, figures: dict[str, Any], size: int) -> list[Result]:
    """A driver's settings as scored rows; the ingest time on the first (the pass's ingest)."""
    results: list[Result] = []
    for setting in figures["settings"]:
        notes = {**setting.get("inner", {}), "versions": figures["versions"]}
        if figures.get("http"):
            notes["queries_per_s"] = setting["queries_per_s"]
        results.append(
            score(
                bench,
                Result(
                    system=system,
                    setting=setting["setting"],
                    documents=len(bench.doc_ids),
                    rankings=setting["rankings"],
                    seconds=setting["seconds"],
                    peak_rss_bytes=figures["peak_rss_bytes"],
                    disk_bytes=size,
                    ingest_seconds=None if results else figures.get("ingest_seconds"),
                    http=figures.get("http", False),
                    notes=notes,
                ),
            )
        )
    return results


def run_driver(
    bench: Bench,
    driver: str,
    python: str,
    job: dict[str, Any],
    work: Path,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run bench/drivers/<driver>_driver.py with `python` on a job; its result, or why it failed."""
    job = {
        "model": bench.model,
        "chunk": CHUNK,
        "top_k": TOP_K,
        "warmup": WARMUP,
        "queries": bench.queries,
        **job,
    }
    work.mkdir(parents=True, exist_ok=True)
    job_path, result_path = work / f"{driver}-job.json", work / f"{driver}-result.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    env = {
        **(os.environ if env is None else env),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
    }
    logged = work / f"{driver}.log"
    command = [python, str(DRIVERS / f"{driver}_driver.py"), str(job_path), str(result_path)]
    started = time.perf_counter()
    with logged.open("wb") as output:
        status = subprocess.run(
            command,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=bench.deadline_seconds,
            check=False,
        ).returncode
    if status != 0:
        tail = logged.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{driver} driver exited with status {status}:\n{tail}")
    log.info("%s: done in %s", driver, report.format_seconds(time.perf_counter() - started))
    return json.loads(result_path.read_text(encoding="utf-8"))
