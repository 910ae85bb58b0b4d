"""Peers benchmark: ours beside txtai and Chroma on SciFact, each on its own defaults.

Every system runs in its own process and is measured the same way: ingest documents/s (encoding
included, until the documents are on disk), latency of one query at a time (encoding included),
peak resident memory of that process, bytes of its directory per document, and nDCG@10 of the
rankings it returns, scored here by `index.metrics`. Each system is measured `--repeats` times,
interleaved (ours, txtai, Chroma, ours, ...), each time from an empty directory, with the load
average recorded when it starts; `bench.peers_report` renders medians and spreads.

Ours is the real HTTP service (`bench.live.LiveServer`) on its defaults (onnx encoder, k=128, SQ8,
candidates re-scored by exact cosine), then refitted without re-encoding to k=d, Flat, no
re-scoring (exact cosine), then that collection is queried in process (the service's Engine, no
HTTP). txtai and Chroma run in their own virtual environments under bench/.peers/ (`--setup`
creates them) through the drivers in bench/drivers/; a peer without one is skipped, and the
report says how to create it.
"""

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import chroma_model, data, peers_report, report
from bench.live import LiveServer, wait_job
from index.collection import disk_bytes
from index.encoder import bundled_model_path
from index.metrics import ndcg_at_k
from service.config import ENV_PREFIX, ServerSettings

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PEERS_DIR = HERE / ".peers"
DRIVERS = HERE / "drivers"
TORCH = "torch==2.13.0"
"""Installed first in every environment: the CPU build where PIP_FIND_LINKS offers it; a later
install that let pip choose would pull a multi-GB CUDA build."""

CHUNK: int = ServerSettings.model_fields["ingest_chunk"].default
"""Documents per ingest chunk for every system: the service's default."""
TOP_K = 10
WARMUP = 3
"""Untimed queries before each timed pass: first calls pay for lazy loading."""
POLL_SECONDS = 0.5
"""How often the ingest job is polled: at 50 ms the polling itself slowed the server's encoding."""
REPEATS = 3
COLLECTION = "scifact"
SMOKE_DOCS = 150
SMOKE_QUERIES = 20


@dataclass(frozen=True)
class Peer:
    """A system beside ours: the packages of its environment and the driver that runs it."""

    name: str
    requirements: tuple[str, ...]
    driver: str
    chroma_model: bool = False
    """Runs with HOME set to its own folder, where `--setup` puts the ONNX model files that Chroma's
    default embedding function would download (bench.chroma_model)."""

    def home(self, peers_dir: Path) -> Path:
        return peers_dir / self.name

    def user_home(self, peers_dir: Path) -> Path:
        return self.home(peers_dir) / "home"

    def python(self, peers_dir: Path) -> Path:
        return self.home(peers_dir) / "bin" / "python"

    def stamp(self) -> str:
        """What a complete environment's `.installed` file holds: every requirement, in order."""
        return "\n".join((TORCH, *self.requirements)) + "\n"

    def missing(self, peers_dir: Path) -> str | None:
        """Why this peer cannot run (no environment, or an outdated one), else None."""
        stamp = self.home(peers_dir) / ".installed"
        if not self.python(peers_dir).is_file() or not stamp.is_file():
            state = "has no virtual environment"
        elif stamp.read_text(encoding="utf-8") != self.stamp():
            state = "has a virtual environment with other versions"
        elif (
            self.chroma_model
            and not (chroma_model.model_folder(self.user_home(peers_dir)) / "model.onnx").is_file()
        ):
            state = "lacks the ONNX files of its default embedding function"
        else:
            return None
        where = "" if peers_dir == PEERS_DIR else f" --peers-dir {peers_dir}"
        return (
            f"{self.name} skipped: it {state} at {self.home(peers_dir)}; create it with "
            f"`.venv/bin/python -m bench peers --setup{where}` (a few minutes, downloads from PyPI)"
        )


PEERS = (
    Peer("txtai", ("txtai==9.14.0", "faiss-cpu==1.15.1", "sentence-transformers==6.2.0"), "txtai"),
    Peer("chroma", ("chromadb==1.5.9",), "chroma", chroma_model=True),
)
SYSTEMS = ("ours", *(peer.name for peer in PEERS))


class SetupFailed(RuntimeError):
    """A peer's environment could not be made as the benchmark needs it."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--setup",
        action="store_true",
        help="create the peers' virtual environments under --peers-dir, then exit",
    )
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated subset of {', '.join(SYSTEMS)} (default: all)",
    )
    parser.add_argument("--docs", type=int, help="first N documents (a subset keeping judgments)")
    parser.add_argument("--queries", type=int, help="first N judged test queries")
    parser.add_argument(
        "--repeats",
        type=int,
        help=f"passes of each system, interleaved (default {REPEATS}; 1 with --smoke)",
    )
    parser.add_argument("--peers-dir", type=Path, default=PEERS_DIR, help=f"default {PEERS_DIR}")
    parser.add_argument("--keep", action="store_true", help="keep the systems' directories")


def run(args: argparse.Namespace) -> int:
    systems = [name.strip() for name in args.systems.split(",") if name.strip()]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        raise SystemExit(f"bench peers: unknown systems {unknown}: pick from {list(SYSTEMS)}")
    peers = [peer for peer in PEERS if peer.name in systems]
    if args.setup:
        for peer in peers:
            setup(peer, args.peers_dir)
        return 0
    out = Path(args.out) if args.out else report.RESULTS_DIR
    root = Path(args.data) if args.data else data.data_dir()
    bench = Bench.load(root, args)
    repeats = args.repeats or (1 if args.smoke else REPEATS)
    skipped: list[str] = []
    for peer in peers:
        reason = peer.missing(args.peers_dir)
        if reason is not None:
            log.warning("%s", reason)
            skipped.append(reason)
    runnable = [peer for peer in peers if peer.missing(args.peers_dir) is None]
    work = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    results: list[Result] = []
    try:
        for repetition in range(1, repeats + 1):
            if "ours" in systems:
                results += timed_run(repetition, "ours", lambda w: ours(bench, w, args), work)
            for peer in list(runnable):
                try:
                    results += timed_run(
                        repetition, peer.name, lambda w, p=peer: drive_peer(bench, p, w, args), work
                    )
                except (RuntimeError, subprocess.TimeoutExpired) as exc:  # the others still count
                    log.error("%s failed: %s", peer.name, exc)
                    lines = str(exc).strip().splitlines() or [type(exc).__name__]
                    skipped.append(f"{peer.name} failed: {lines[0]} … {lines[-1]}")
                    runnable.remove(peer)
        bench.loads.append(os.getloadavg())
        write(bench, results, skipped, out, repeats)
    finally:
        if args.keep:
            log.info("directories kept in %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def timed_run(
    repetition: int, name: str, measure: Callable[[Path], list["Result"]], work: Path
) -> list["Result"]:
    """One system's pass from an empty directory, with the load average when it started."""
    load = os.getloadavg()
    (work / f"{name}-{repetition}").mkdir(parents=True)
    log.info("pass %d: %s (load average %.2f)", repetition, name, load[0])
    results = measure(work / f"{name}-{repetition}")
    for result in results:
        result.repetition, result.run, result.load_average_start = repetition, name, load
    return results


# ---- the environments ---------------------------------------------------------------------------


def setup(peer: Peer, peers_dir: Path) -> None:
    """Create the peer's venv: pip, then torch (CPU) first, then its packages; check torch."""
    home, python = peer.home(peers_dir), peer.python(peers_dir)
    if peer.missing(peers_dir) is None:
        log.info("%s: environment up to date at %s", peer.name, home)
        return
    log.info("%s: creating %s (pip installs; minutes)", peer.name, home)
    if not python.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for packages in (["--upgrade", "pip"], [TORCH], list(peer.requirements)):
        subprocess.run([*pip, *packages], check=True)
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    )
    installed = {row["name"].lower(): row["version"] for row in json.loads(listed.stdout)}
    torch = installed.get("torch", "")
    cuda = sorted(name for name in installed if name.startswith("nvidia-"))
    if not torch.startswith(TORCH.split("==")[1]) or cuda:
        raise SetupFailed(
            f"{peer.name}: torch {torch or 'missing'} with {cuda or 'no'} CUDA packages in {home}: "
            f"the CPU build of {TORCH} is needed (set PIP_FIND_LINKS to where its wheel is), "
            "delete the folder and run --setup again"
        )
    if peer.chroma_model:
        folder = chroma_model.export(Path(bundled_model_path()), peer.user_home(peers_dir))
        log.info("%s: its default embedding function's files are in %s", peer.name, folder)
    (home / ".installed").write_text(peer.stamp(), encoding="utf-8")
    log.info("%s: ready (torch %s)", peer.name, torch)


# ---- the data every system gets ---------------------------------------------------------------


@dataclass
class Bench:
    """SciFact as every system sees it: documents, the judged test queries, train queries."""

    beir: data.Beir
    queries: list[str]
    judgments: list[dict[str, int]]
    smoke: bool
    model: str
    model_name: str
    loads: list[tuple[float, float, float]] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path, args: argparse.Namespace) -> "Bench":
        limit_docs = SMOKE_DOCS if args.smoke and args.docs is None else args.docs
        beir = data.load_scifact(root, limit_docs=limit_docs)
        rows, judgments = beir.judged("test")
        limit_queries = SMOKE_QUERIES if args.smoke and args.queries is None else args.queries
        rows, judgments = rows[:limit_queries], judgments[:limit_queries]
        return cls(
            beir=beir,
            queries=[beir.queries[i] for i in rows],
            judgments=judgments,
            smoke=args.smoke,
            model=str(args.model or bundled_model_path()),
            model_name=args.model or "all-MiniLM-L6-v2 (bundled)",
            loads=[os.getloadavg()],
        )

    def write_documents(self, path: Path) -> Path:
        with path.open("w", encoding="utf-8") as handle:
            for doc_id, text in zip(self.beir.doc_ids, self.beir.documents, strict=True):
                handle.write(json.dumps({"id": doc_id, "text": text}) + "\n")
        return path


# ---- one row of the table ---------------------------------------------------------------------


@dataclass
class Result:
    """One system at one setting, as measured."""

    system: str
    setting: str
    documents: int
    rankings: list[list[str]]
    seconds: list[float]
    peak_rss_bytes: int | None
    disk_bytes: int | None
    ingest_seconds: float | None = None
    ndcg: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    repetition: int = 0
    run: str = ""
    load_average_start: tuple[float, float, float] | None = None

    def figures(self) -> dict[str, Any]:
        ms = 1000 * np.asarray(self.seconds)
        return {
            "system": self.system,
            "setting": self.setting,
            "repetition": self.repetition,
            "run": self.run,
            "load_average_start": self.load_average_start,
            "documents": self.documents,
            "queries": len(self.seconds),
            "ingest_seconds": self.ingest_seconds,
            "ingest_docs_per_s": (
                None if self.ingest_seconds is None else self.documents / self.ingest_seconds
            ),
            "query_ms_p50": float(np.percentile(ms, 50)),
            "query_ms_p95": float(np.percentile(ms, 95)),
            "query_ms_mean": float(ms.mean()),
            "peak_rss_mib": None
            if self.peak_rss_bytes is None
            else self.peak_rss_bytes / report.MiB,
            "disk_bytes_per_doc": (
                None if self.disk_bytes is None else self.disk_bytes / self.documents
            ),
            "ndcg_at_10": self.ndcg,
            **self.notes,
        }


def score(bench: Bench, result: Result) -> Result:
    result.ndcg = ndcg_at_k(result.rankings, bench.judgments, TOP_K)
    return result


# ---- ours ---------------------------------------------------------------------------------------


def ours(bench: Bench, work: Path, args: argparse.Namespace) -> list[Result]:
    """The service over HTTP on its defaults, then refitted to exact cosine; then embedded."""
    data_dir = work / "ours"
    settings = {"model": args.model} if args.model else {}
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
    job = {"workdir": str(data_dir), "collection": COLLECTION, "documents": None}
    env = server.env() | {f"{ENV_PREFIX}DATA_DIR": str(data_dir)}
    figures = run_driver(bench, "embedded", sys.executable, job, work, env)
    setting = figures["settings"][0]
    embedded = score(
        bench,
        Result(
            system="ours, embedded (Engine in process, no HTTP)",
            setting=exact.setting,
            documents=len(bench.beir.doc_ids),
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


def _ingest(bench: Bench, client: httpx.Client) -> tuple[float, dict[str, Any]]:
    """Create the collection with the server's defaults and ingest every document in one
    background job, polled every POLL_SECONDS; its seconds (until done: fit and index included)
    and the collection's description."""
    _check(client.post("/collections", json={"name": COLLECTION}))
    documents = [
        {"id": doc_id, "text": text}
        for doc_id, text in zip(bench.beir.doc_ids, bench.beir.documents, strict=True)
    ]
    n = len(documents)
    log.info("ours: ingesting %d documents over HTTP", n)
    started = time.perf_counter()
    accepted = _check(
        client.post(f"/collections/{COLLECTION}/ingest", json={"documents": documents})
    )
    job = wait_job(client, accepted["job"]["id"], timeout=3600, interval=POLL_SECONDS)
    ingest_seconds = time.perf_counter() - started
    if job["state"] != "done":
        raise RuntimeError(f"ours: ingest job failed: {job}")
    log.info(
        "ours: ingested in %s (%.1f docs/s)",
        report.format_seconds(ingest_seconds),
        n / ingest_seconds,
    )
    return ingest_seconds, _check(client.get(f"/collections/{COLLECTION}"))


def _rescoring(settings: dict[str, Any]) -> str:
    """How the collection re-scores, as the table says it (the setting, not the old default)."""
    space = settings["rescore"]
    if space == "off":
        return "no re-scoring"
    if space == "kernel" and settings["beta"] == settings["gamma"] == 0:
        return "candidates re-scored by kernel cosine (β=γ=0, all dimensions: raw cosine)"
    return f"candidates re-scored by {space} cosine"


def _serve(bench: Bench, client: httpx.Client, data_dir: Path) -> tuple[Result, Result]:
    ingest_seconds, info = _ingest(bench, client)
    described = f"service defaults: k={info['k']}, {info['settings']['index_spec']}, " + _rescoring(
        info["settings"]
    )
    default = _query_pass(bench, client, described)
    default.ingest_seconds = ingest_seconds
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
    """Every query alone over HTTP, timed at the client; the server's own split in the notes."""
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
        timing = dict(re.findall(r"(\w+);dur=([\d.]+)", response.headers.get("server-timing", "")))
        server_ms.append([float(timing.get("encode", "nan")), float(timing.get("search", "nan"))])
    encode_ms, search_ms = np.median(np.asarray(server_ms), axis=0)
    return Result(
        system="ours, HTTP service",
        setting=setting,
        documents=len(bench.beir.doc_ids),
        rankings=rankings,
        seconds=seconds,
        peak_rss_bytes=None,
        disk_bytes=None,
        notes={"encode_ms_p50": encode_ms, "search_ms_p50": search_ms},
    )


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:2000]}"
        )
    return response.json() if response.content else None


# ---- the peers --------------------------------------------------------------------------------


def drive_peer(bench: Bench, peer: Peer, work: Path, args: argparse.Namespace) -> list[Result]:
    """Ingest, query and measure one peer in its own environment, from a fresh directory."""
    workdir = work / peer.name
    documents = bench.write_documents(work.parent / "documents.jsonl")
    job: dict[str, Any] = {"workdir": str(workdir), "documents": str(documents)}
    log.info("%s: ingesting %d documents", peer.name, len(bench.beir.doc_ids))
    env = dict(os.environ)
    if peer.chroma_model:
        env["HOME"] = str(peer.user_home(args.peers_dir))
    figures = run_driver(bench, peer.driver, str(peer.python(args.peers_dir)), job, work, env)
    size = disk_bytes(workdir)
    results = []
    for setting in figures["settings"]:
        results.append(
            score(
                bench,
                Result(
                    system=peer.name,
                    setting=setting["setting"],
                    documents=len(bench.beir.doc_ids),
                    rankings=setting["rankings"],
                    seconds=setting["seconds"],
                    peak_rss_bytes=figures["peak_rss_bytes"],
                    disk_bytes=size,
                    ingest_seconds=None if results else figures.get("ingest_seconds"),
                    notes={"versions": figures["versions"]},
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
            command, env=env, stdout=output, stderr=subprocess.STDOUT, timeout=3600, check=False
        ).returncode
    if status != 0:
        tail = logged.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{driver} driver exited with status {status}:\n{tail}")
    log.info("%s: done in %s", driver, report.format_seconds(time.perf_counter() - started))
    return json.loads(result_path.read_text(encoding="utf-8"))


# ---- the result file ---------------------------------------------------------------------------


def write(
    bench: Bench, results: Sequence[Result], skipped: Sequence[str], out: Path, repeats: int
) -> Path:
    """peers.json (every pass) and peers.md (rendered from it by bench.peers_report)."""
    figures = {
        "smoke": bench.smoke,
        "documents": len(bench.beir.doc_ids),
        "queries": len(bench.queries),
        "repeats": repeats,
        "chunk": CHUNK,
        "model": bench.model_name,
        "cores": os.cpu_count(),
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average": bench.loads,
        "rows": [result.figures() for result in results],
        "skipped": list(skipped),
    }
    report.write_json(out / "peers.json", figures)
    return report.write_text(
        out / "peers.md", "# Peers on SciFact\n\n" + peers_report.tables(figures)
    )
