"""`python -m bench distributed`: documents/s of the Ray ingest with 1 and 2 encoder actors of one
CPU each, against the single-process service ingest of the same sentences, in one run.

Two reference passes without Ray say what the machine allows: `bare-1` and `bare-2` encode the
same sentences in 1 and 2 plain processes of one encoder thread each (shares of the corpus,
started together once their models are loaded), so ray-N / bare-N is what Ray costs and
bare-2 / bare-1 is the most two actors can scale by on these cores.

The systems alternate (single, ray-1, ray-2, single, ...) for `--repeats` rounds so that a change of
load on the shared machine hits all of them; medians and ranges are reported, with the load
average at the start of each pass. The Ray cluster starts once (its start-up is reported apart);
each Ray pass includes its actors' start (model load), the encode into Parquet, the statistics
and the load into a new collection. The single pass is an ingest job of a live server (server
start excluded), the path `python -m bench speed` measures.
"""

import argparse
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import data, distributed_report, live, report, speed_http, speed_plan
from index import distributed
from index.encoder import Encoder
from index.snapshots import Settings

log = logging.getLogger("bench.distributed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--documents", type=int, default=4000, help="Reuters sentences per pass")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the systems")


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
            for system in distributed_report.SYSTEMS:
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
    path = report.write_text(out / "distributed.md", distributed_report.markdown(figures))
    print(path)
    return 0


def one_pass(system: str, corpus: list[str], work: Path) -> dict[str, Any]:
    work.mkdir(parents=True)
    if system == "single":
        server = live.LiveServer(work / "data", work / "server.log").start()
        try:
            with httpx.Client(base_url=server.url, timeout=600) as client:
                result = speed_http.ingest(client, corpus, poll=speed_plan.FULL.poll)
        finally:
            server.close()
        return {"seconds": result["seconds"], "docs_per_second": result["docs_per_second"]}
    if system.startswith("bare-"):
        seconds = bare_encode(corpus, int(system.split("-")[1]))
        return {"seconds": seconds, "docs_per_second": len(corpus) / seconds}
    documents = [{"id": f"r{i}", "text": text} for i, text in enumerate(corpus)]
    options = distributed.EncodeOptions(actors=int(system.split("-")[1]), cpus_per_actor=1.0)
    started = time.perf_counter()
    encoded = distributed.encode(distributed.documents_table(documents), work / "out", options)
    encode_seconds = time.perf_counter() - started
    kernel = distributed.statistics(encoded)
    root = work / "data"
    root.mkdir()
    distributed.create_and_load(root, "news", encoded, kernel, Settings()).close()
    seconds = time.perf_counter() - started
    parquet = sum(path.stat().st_size for path in (work / "out").glob("*.parquet"))
    return {
        "seconds": seconds,
        "docs_per_second": len(corpus) / seconds,
        "encode_seconds": encode_seconds,
        "encode_docs_per_second": len(corpus) / encode_seconds,
        "parquet_bytes_per_document": parquet / len(corpus),
    }


def bare_encode(corpus: list[str], processes: int) -> float:
    """Seconds for `processes` plain processes of one encoder thread to encode shares of
    `corpus`, from a common start once every model is loaded, to the last one's end."""
    context = multiprocessing.get_context("spawn")
    ready, done, start = context.Queue(), context.Queue(), context.Event()
    workers = [
        context.Process(target=_bare_worker, args=(corpus[i::processes], ready, start, done))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=300)
    started = time.perf_counter()
    start.set()
    for _ in workers:
        done.get(timeout=3600)
    seconds = time.perf_counter() - started
    for worker in workers:
        worker.join()
    return seconds


def _bare_worker(texts: list[str], ready: Any, start: Any, done: Any) -> None:
    encoder = Encoder(threads=1)
    encoder.encode(texts[:64])  # loads the model
    ready.put(True)
    start.wait()
    encoder.encode(texts)
    done.put(True)


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
