"""Peers benchmark: ours beside txtai and Chroma on SciFact, same corpus, queries and model.

Every system runs in its own process and is measured the same way: ingest documents/s (encoding
included, until the documents are on disk), latency of one query at a time (encoding included),
peak resident memory of that process, bytes of its directory per document, and nDCG@10 of the
rankings it returns, scored here by `index.metrics`. Ours is the real HTTP service
(`bench.live.LiveServer`), ingested once at k=d (Flat, no re-scoring) and refitted, without
re-encoding, to the β, γ, k ≤ 128 that its tune route picks on the train queries (SQ8, re-scoring);
then the same collection is queried in process, without HTTP. txtai and Chroma run in their own
virtual environments under bench/.peers/ (`--setup` creates them) through the drivers in
bench/drivers/; a peer without one is skipped, and the report says how to create it.
`--requery DIR` skips the ingests and queries the directories a `--keep` run left, so the
latency column can be measured again when the machine is quiet.
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import data, report
from bench.live import LiveServer, wait_job
from index.collection import disk_bytes
from index.encoder import bundled_model_path
from index.metrics import ndcg_at_k
from service.config import ENV_PREFIX

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PEERS_DIR = HERE / ".peers"
DRIVERS = HERE / "drivers"
TORCH = "torch==2.13.0"
"""Installed first in every environment: the CPU build where PIP_FIND_LINKS offers it; a later
install that let pip choose would pull a multi-GB CUDA build."""

CHUNK = 1024
"""Documents per ingest chunk for every system (the service's default INGEST_CHUNK)."""
TOP_K = 10
WARMUP = 3
"""Untimed queries before each timed pass: first calls pay for lazy loading."""
MAX_K = 128
COLLECTION = "scifact"
SMOKE_DOCS = 150
SMOKE_QUERIES = 20
MiB = 1024 * 1024


@dataclass(frozen=True)
class Peer:
    """A system beside ours: the packages of its environment and the driver that runs it."""

    name: str
    requirements: tuple[str, ...]
    driver: str

    def home(self, peers_dir: Path) -> Path:
        return peers_dir / self.name

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
        else:
            return None
        where = "" if peers_dir == PEERS_DIR else f" --peers-dir {peers_dir}"
        return (
            f"{self.name} skipped: it {state} at {self.home(peers_dir)}; create it with "
            f"`.venv/bin/python -m bench peers --setup{where}` (a few minutes, downloads from PyPI)"
        )


PEERS = (
    Peer("txtai", ("txtai==9.14.0", "faiss-cpu==1.15.1", "sentence-transformers==6.2.0"), "txtai"),
    Peer("chroma", ("chromadb==1.5.9", "sentence-transformers==6.2.0"), "chroma"),
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
    parser.add_argument("--peers-dir", type=Path, default=PEERS_DIR, help=f"default {PEERS_DIR}")
    parser.add_argument("--keep", action="store_true", help="keep the systems' directories")
    parser.add_argument(
        "--requery",
        type=Path,
        metavar="DIR",
        help="no ingest: query again the directories a --keep run left in DIR (latency re-pass)",
    )


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
    work = args.requery or Path(tempfile.mkdtemp(prefix="bench-peers-"))
    try:
        results: list[Result] = []
        skipped: list[str] = []
        if "ours" in systems:
            results += ours(bench, work, args)
        for peer in peers:
            reason = peer.missing(args.peers_dir)
            if reason is not None:
                log.warning("%s", reason)
                skipped.append(reason)
                continue
            try:
                results += drive_peer(bench, peer, work, args)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:  # the others still count
                log.error("%s failed: %s", peer.name, exc)
                lines = str(exc).strip().splitlines() or [type(exc).__name__]
                skipped.append(f"{peer.name} failed: {lines[0]} … {lines[-1]}")
        bench.loads.append(os.getloadavg())
        write(bench, results, skipped, out)
    finally:
        if args.keep or args.requery:
            log.info("directories kept in %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


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
    batch_size: int
    loads: list[tuple[float, float, float]] = field(default_factory=list)
    requery: Path | None = None

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
            batch_size=args.batch_size,
            loads=[os.getloadavg()],
            requery=args.requery,
        )

    def write_documents(self, path: Path) -> Path:
        with path.open("w", encoding="utf-8") as handle:
            for doc_id, text in zip(self.beir.doc_ids, self.beir.documents, strict=True):
                handle.write(json.dumps({"id": doc_id, "text": text}) + "\n")
        return path

    def train_queries(self) -> list[dict[str, Any]]:
        """The judged train queries in the tune route's form."""
        rows, judgments = self.beir.judged("train")
        return [
            {"text": self.beir.queries[i], "relevant": {d: g for d, g in j.items() if g > 0}}
            for i, j in zip(rows, judgments, strict=True)
        ]


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

    def figures(self) -> dict[str, Any]:
        ms = 1000 * np.asarray(self.seconds)
        return {
            "system": self.system,
            "setting": self.setting,
            "documents": self.documents,
            "queries": len(self.seconds),
            "ingest_seconds": self.ingest_seconds,
            "ingest_docs_per_s": (
                None if self.ingest_seconds is None else self.documents / self.ingest_seconds
            ),
            "query_ms_p50": float(np.percentile(ms, 50)),
            "query_ms_p95": float(np.percentile(ms, 95)),
            "query_ms_mean": float(ms.mean()),
            "peak_rss_mib": None if self.peak_rss_bytes is None else self.peak_rss_bytes / MiB,
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
    """The service over HTTP at k=d (Flat, no re-scoring) and tuned k ≤ 128; then embedded."""
    data_dir = work / "ours"
    settings = server_settings(bench, args)
    logged = work / ("requery-server.log" if args.requery else "server.log")
    server = LiveServer(data_dir, logged, inherit_settings=True, **settings)
    passed_on = sorted(k for k in os.environ if k.startswith(ENV_PREFIX) and k != data.ENV_VAR)
    log.info("ours: starting the server (passing on %s)", passed_on or "no settings")
    server.start()
    try:
        with server.client(timeout=600) as client:
            plain, tuned = _serve(bench, client, data_dir, ingest=not args.requery)
        rss = server.peak_rss()
        server.stop()
    finally:
        server.close()
    for result in (plain, tuned):
        result.peak_rss_bytes = rss
        result.notes["server_settings"] = settings
        result.notes["server_settings_passed_on"] = passed_on
    job = {"workdir": str(data_dir), "collection": COLLECTION, "documents": None}
    env = server.env() | {f"{ENV_PREFIX}DATA_DIR": str(data_dir)}
    figures = run_driver(bench, "embedded", sys.executable, job, work, env)
    embedded = score(
        bench,
        Result(
            system="ours, embedded (Engine in process, no HTTP)",
            setting=tuned.setting,
            documents=len(bench.beir.doc_ids),
            rankings=figures["settings"][0]["rankings"],
            seconds=figures["settings"][0]["seconds"],
            peak_rss_bytes=figures["peak_rss_bytes"],
            disk_bytes=None,
            notes={"versions": figures["versions"]},
        ),
    )
    same = sum(a == b for a, b in zip(embedded.rankings, tuned.rankings, strict=True))
    embedded.notes["same_rankings_as_http"] = same / len(tuned.rankings)
    return [plain, tuned, embedded]


def server_settings(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """The service's settings for this run: its defaults (the onnx encoder backend, as users get
    it; WHITENED_SEARCH_BACKEND=torch runs sentence-transformers, as the peers do)."""
    settings: dict[str, Any] = {"batch_size": bench.batch_size, "ingest_chunk": CHUNK}
    if args.model:
        settings["model"] = args.model
    return settings


def _ingest(bench: Bench, client: httpx.Client) -> tuple[float, int]:
    """Create the collection at k = d (Flat, no re-scoring) and ingest every document in one
    background job; its seconds (until done: fit and index included) and d."""
    # The model's dimension d, from a collection created with the server's defaults.
    _check(client.post("/collections", json={"name": COLLECTION}))
    dimension = _check(client.get(f"/collections/{COLLECTION}"))["dimension"]
    _check(client.delete(f"/collections/{COLLECTION}"))
    create = {"name": COLLECTION, "k": dimension, "index_spec": "Flat", "rescore": False}
    _check(client.post("/collections", json=create))
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
    job = wait_job(client, accepted["job"]["id"], timeout=3600)
    ingest_seconds = time.perf_counter() - started
    if job["state"] != "done":
        raise RuntimeError(f"ours: ingest job failed: {job}")
    log.info(
        "ours: ingested in %s (%.1f docs/s)",
        report.format_seconds(ingest_seconds),
        n / ingest_seconds,
    )
    return ingest_seconds, dimension


def _serve(
    bench: Bench, client: httpx.Client, data_dir: Path, ingest: bool
) -> tuple[Result, Result]:
    if ingest:
        ingest_seconds, dimension = _ingest(bench, client)
    else:  # a kept collection: back to the plain setting, from the stored raw vectors
        ingest_seconds = None
        dimension = _check(client.get(f"/collections/{COLLECTION}"))["dimension"]
        plain = {"beta": 0, "gamma": 0, "k": dimension, "index_spec": "Flat", "rescore": False}
        _check(client.post(f"/collections/{COLLECTION}/fit", json=plain))
    plain = _query_pass(bench, client, f"k={dimension} (rotation only), Flat, no re-scoring")
    plain.ingest_seconds = ingest_seconds
    plain.disk_bytes = disk_bytes(data_dir / COLLECTION)

    log.info("ours: tuning β, γ, k ≤ %d on %d train queries", MAX_K, len(bench.train_queries()))
    started = time.perf_counter()
    tune = {"queries": bench.train_queries(), "max_k": MAX_K, "apply": False}
    best = _check(client.post(f"/collections/{COLLECTION}/tune", json=tune))["best"]
    tune_seconds = time.perf_counter() - started
    refit = {
        **{key: best[key] for key in ("beta", "gamma", "k")},
        "index_spec": "SQ8",
        "rescore": True,
    }
    started = time.perf_counter()
    _check(client.post(f"/collections/{COLLECTION}/fit", json=refit))
    fit_seconds = time.perf_counter() - started
    tuned = _query_pass(
        bench,
        client,
        f"tuned β={best['beta']:g}, γ={best['gamma']:g}, k={best['k']}, SQ8, re-scoring",
    )
    tuned.disk_bytes = disk_bytes(data_dir / COLLECTION)
    tuned.notes.update(
        tune_seconds=tune_seconds,
        tune_train_ndcg_at_10=best["score"],
        refit_seconds=fit_seconds,
        refit="same documents, no re-encoding: POST /fit from the stored raw vectors",
    )
    return score(bench, plain), score(bench, tuned)


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
        notes={"server_encode_ms_p50": encode_ms, "server_search_ms_p50": search_ms},
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
    """Ingest, query and measure one peer in its own environment, from a fresh directory (with
    --requery: only query the directory a kept run left)."""
    workdir = work / peer.name
    documents = work / "documents.jsonl"
    if args.requery:
        job: dict[str, Any] = {"workdir": str(workdir), "documents": None}
        log.info("%s: querying %s again", peer.name, workdir)
    else:
        if not documents.is_file():
            bench.write_documents(documents)
        job = {"workdir": str(workdir), "documents": str(documents)}
        log.info("%s: ingesting %d documents", peer.name, len(bench.beir.doc_ids))
    figures = run_driver(bench, peer.driver, str(peer.python(args.peers_dir)), job, work)
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
        "batch_size": bench.batch_size,
        "chunk": CHUNK,
        "top_k": TOP_K,
        "warmup": WARMUP,
        "queries": bench.queries,
        **job,
    }
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


# ---- the report ---------------------------------------------------------------------------------


def write(bench: Bench, results: Sequence[Result], skipped: Sequence[str], out: Path) -> Path:
    figures = [result.figures() for result in results]
    rows = []
    for row in figures:
        docs_per_s = row["ingest_docs_per_s"]
        rows.append(
            [
                row["system"],
                row["setting"],
                "—" if docs_per_s is None else f"{docs_per_s:.1f}",
                f"{row['query_ms_p50']:.1f} / {row['query_ms_p95']:.1f}",
                "—" if row["peak_rss_mib"] is None else f"{row['peak_rss_mib']:.0f}",
                "—" if row["disk_bytes_per_doc"] is None else f"{row['disk_bytes_per_doc']:.0f}",
                f"{100 * row['ndcg_at_10']:.2f}",
            ]
        )
    header = [
        "system",
        "setting",
        "ingest docs/s",
        "query p50 / p95 ms",
        "peak RSS MiB",
        "disk bytes/doc",
        "nDCG@10 ×100",
    ]
    first, last = bench.loads[0], bench.loads[-1]
    lines = [
        "# Peers on SciFact"
        + (" (SMOKE RUN: numbers not meaningful)" if bench.smoke else "")
        + (f" (re-query of {bench.requery}: no ingest)" if bench.requery else ""),
        "",
        f"{len(bench.beir.doc_ids)} documents (title + text), {len(bench.queries)} judged test "
        f"queries, one at a time, top {TOP_K}; model {bench.model_name}, encoder batch "
        f"{bench.batch_size}, ingest chunks of {CHUNK}. Load average at start "
        f"{first[0]:.2f} / {first[1]:.2f} / {first[2]:.2f}, at end "
        f"{last[0]:.2f} / {last[1]:.2f} / {last[2]:.2f} (1 / 5 / 15 min) on {os.cpu_count()} "
        f"cores; {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        report.markdown_table(header, rows),
        "",
    ]
    lines += [f"- {note}" for note in _notes(figures)]
    lines += [f"- {reason}" for reason in skipped]
    report.write_json(
        out / "peers.json",
        {
            "smoke": bench.smoke,
            "requery": None if bench.requery is None else str(bench.requery),
            "documents": len(bench.beir.doc_ids),
            "queries": len(bench.queries),
            "batch_size": bench.batch_size,
            "chunk": CHUNK,
            "load_average": bench.loads,
            "cores": os.cpu_count(),
            "rows": figures,
            "skipped": list(skipped),
        },
    )
    return report.write_text(out / "peers.md", "\n".join(lines))


def _notes(figures: Sequence[dict[str, Any]]) -> list[str]:
    notes = []
    for row in figures:
        if "refit_seconds" in row:
            notes.append(
                f"{row['system']}, {row['setting']}: the same collection, refitted in "
                f"{row['refit_seconds']:.1f} s without re-encoding (tune route on the train "
                f"queries: {row['tune_seconds']:.0f} s, train nDCG@10 "
                f"{100 * row['tune_train_ndcg_at_10']:.2f}); its RSS is the server's peak over "
                "both settings."
            )
        if "server_encode_ms_p50" in row:
            notes.append(
                f"{row['system']}, {row['setting']}: inside the server, encoding "
                f"{row['server_encode_ms_p50']:.1f} ms and search {row['server_search_ms_p50']:.2f}"
                " ms per query (median, Server-Timing); the rest is HTTP."
            )
        if "same_rankings_as_http" in row:
            notes.append(
                f"{row['system']}: the server's collection opened in process after the server "
                f"stopped; {100 * row['same_rankings_as_http']:.0f} % of its rankings equal the "
                "HTTP ones; RSS is that process's peak (model, collection, queries; no ingest)."
            )
        if "versions" in row and "same_rankings_as_http" not in row:
            versions = ", ".join(f"{k} {v}" for k, v in row["versions"].items())
            notes.append(f"{row['system']}, {row['setting']}: {versions}.")
    return list(dict.fromkeys(notes))
