"""`python -m bench distributed`: documents/s of the Ray ingest with 1 and 2 encoder actors of one
CPU each, against the single-process service ingest of the same sentences, in one run.

The systems alternate (single, ray-1, ray-2, single, ...) for `--repeats` rounds so that a change of
load on the shared machine hits all of them; medians and ranges are reported, with the load
average at the start of each pass. The Ray cluster starts once (its start-up is reported apart);
each Ray pass includes its actors' start (model load), the encode into Parquet, the statistics
and the load into a new collection. The single pass is an ingest job of a live server (server
start excluded), the path `python -m bench speed` measures.
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

from bench import data, live, report, speed
from index import distributed
from index.snapshots import Settings

log = logging.getLogger("bench.distributed")
SYSTEMS = ("single", "ray-1", "ray-2")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--documents", type=int, default=4000, help="Reuters sentences per pass")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the three systems")


def run(args: argparse.Namespace) -> int:
    import ray

    out = Path(args.out) if args.out else report.RESULTS_DIR
    size, repeats = (200, 1) if args.smoke else (args.documents, args.repeats)
    corpus = data.load_reuters_sentences(args.data, size)
    work = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    started = time.perf_counter()
    ray.init(
        num_cpus=2, object_store_memory=300 * 2**20, include_dashboard=False, log_to_driver=False
    )
    figures: dict[str, Any] = {
        "documents": len(corpus),
        "cores": os.cpu_count(),
        "ray_start_seconds": time.perf_counter() - started,
        "passes": [],
    }
    try:
        for round_ in range(repeats):
            for system in SYSTEMS:
                load = os.getloadavg()
                figures["passes"].append(
                    {"system": system, "round": round_, "load_average": load}
                    | one_pass(system, corpus, work / f"{system}-{round_}")
                )
                log.info("%s round %d: %s", system, round_, figures["passes"][-1])
        figures["ray_rss_mib"] = descendants_rss() / 2**20
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    report.write_json(out / "distributed.json", figures)
    path = report.write_text(out / "distributed.md", markdown(figures))
    print(path)
    return 0


def one_pass(system: str, corpus: list[str], work: Path) -> dict[str, Any]:
    work.mkdir(parents=True)
    if system == "single":
        server = live.LiveServer(work / "data", work / "server.log").start()
        try:
            with httpx.Client(base_url=server.url, timeout=600) as client:
                result = speed.ingest(client, corpus, poll=0.1)
        finally:
            server.close()
        return {"seconds": result["seconds"], "docs_per_second": result["docs_per_second"]}
    documents = [{"id": f"r{i}", "text": text} for i, text in enumerate(corpus)]
    options = distributed.EncodeOptions(actors=int(system.split("-")[1]), cpus_per_actor=1.0)
    started = time.perf_counter()
    encoded = distributed.encode(distributed.documents_table(documents), work / "out", options)
    encode_seconds = time.perf_counter() - started
    kernel = distributed.statistics(encoded)
    root = work / "data"
    root.mkdir()
    distributed.create_and_load(root, "news", encoded, kernel, Settings(k=128)).close()
    seconds = time.perf_counter() - started
    parquet = sum(path.stat().st_size for path in (work / "out").glob("*.parquet"))
    return {
        "seconds": seconds,
        "docs_per_second": len(corpus) / seconds,
        "encode_seconds": encode_seconds,
        "encode_docs_per_second": len(corpus) / encode_seconds,
        "parquet_bytes_per_document": parquet / len(corpus),
    }


def descendants_rss() -> int:
    """Resident bytes of this process's descendants: the local Ray's processes."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except (OSError, IndexError, ValueError):
                continue
    family, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - family
        family |= frontier
    total = 0
    for pid in family:
        try:
            total += live.status_bytes(pid, "VmRSS")
        except (OSError, ValueError):  # ended, or a zombie without memory
            continue
    return total


def markdown(figures: dict[str, Any]) -> str:
    rows = []
    medians = {}
    for system in SYSTEMS:
        passes = [p for p in figures["passes"] if p["system"] == system]
        rates = [p["docs_per_second"] for p in passes]
        medians[system] = statistics.median(rates)
        encode = [p["encode_docs_per_second"] for p in passes if "encode_docs_per_second" in p]
        rows.append(
            [
                system,
                len(passes),
                f"{medians[system]:.1f}",
                f"{min(rates):.1f} – {max(rates):.1f}",
                f"{statistics.median(encode):.1f}" if encode else "",
            ]
        )
    loads = ", ".join(f"{p['system']} {p['load_average'][0]:.2f}" for p in figures["passes"])
    parquet = [
        p["parquet_bytes_per_document"]
        for p in figures["passes"]
        if "parquet_bytes_per_document" in p
    ]
    lines = [
        f"# Distributed ingest: {figures['documents']} Reuters sentences, {figures['cores']} cores",
        "",
        "`python -m bench distributed`: passes interleaved (single, ray-1, ray-2) per round; "
        "docs/s of the whole run (Ray: actor start, encode into Parquet, statistics, load into a "
        "collection; single: the service's ingest job).",
        "",
        report.markdown_table(
            ["system", "passes", "docs/s (median)", "range", "encode step docs/s (median)"], rows
        ),
        "",
        f"- ray-2 / ray-1: {medians['ray-2'] / medians['ray-1']:.2f}×; "
        f"ray-2 / single: {medians['ray-2'] / medians['single']:.2f}×",
        f"- Ray start (once): {figures['ray_start_seconds']:.1f} s; resident memory of the local "
        f"Ray's processes at the end: {figures['ray_rss_mib']:.0f} MiB",
        f"- Parquet bytes per document: {statistics.median(parquet):.0f}",
        f"- 1-minute load average at the start of each pass: {loads}",
        "",
    ]
    return "\n".join(lines)
