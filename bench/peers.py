"""Peers benchmark: ours beside txtai, Chroma, LanceDB and Qdrant, each as installed or all on
one encoder, on SciFact (judged) or on Reuters sentences (scored against exact search).

Every system runs in its own process and is measured the same way: ingest documents/s (encoding
included, until the documents are on disk), latency of one query at a time (encoding included),
peak resident memory of that process, bytes of its directory per document, and nDCG@10
(SciFact) or recall@10 against exact search (Reuters) of the rankings it returns, scored here by
`index.metrics`; txtai and Chroma also through their own HTTP servers, as ours is. Each system
is measured `--repeats` times, interleaved (ours, txtai, Chroma, LanceDB, Qdrant, Qdrant Edge,
ours, ...), each time from an empty directory, once the load average has settled (`settle`), and
with the load average recorded when it starts; `bench.peers_report` renders medians and spreads.
Each pass is kept on disk as it ends, so `--resume` continues a stopped run (bench.peers_passes).

Ours is the real HTTP service (`bench.live.LiveServer`) on its defaults (onnx encoder, k=128, SQ8,
candidates re-scored by exact cosine), then refitted without re-encoding to k=d, Flat, no
re-scoring (exact cosine), then that collection is queried in process (the service's Engine, no
HTTP). The peers run in their own virtual environments under bench/.peers/ (`--setup` creates
them, bench.peers_env) through the drivers in bench/drivers/ (bench.peers_drivers); a peer
without one is skipped, and the report says how to create it. This module is the command:
the interleaved passes and the result file; bench.peers_ours measures ours.
"""

import argparse
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import data, peers_report, report
from bench.peers_data import CHUNK, CORPORA, REUTERS_DOCS, SHARED, Bench, Result
from bench.peers_drivers import drive_peer, encoder_alone
from bench.peers_env import PEERS, PEERS_DIR, setup
from bench.peers_ours import ours
from bench.peers_passes import Passes, now

log = logging.getLogger(__name__)

REPEATS = 3
SYSTEMS = ("ours", *(peer.name for peer in PEERS))


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
    parser.add_argument(
        "--encoder",
        choices=("own", "shared"),
        default="own",
        help="own: every system encodes its own way, as installed (peers.json); shared: every "
        "system on one encoder and thread setting (peers_shared.json, bench.peers_data.SHARED)",
    )
    parser.add_argument(
        "--corpus",
        choices=CORPORA,
        default="scifact",
        help="scifact (judged; the default) or reuters (sentences, scored against exact search)",
    )
    parser.add_argument(
        "--docs",
        type=int,
        help="SciFact: a subset of N documents keeping judgments; Reuters: the first N distinct "
        f"sentences (default {REUTERS_DOCS:,})",
    )
    parser.add_argument("--queries", type=int, help="first N judged test queries")
    parser.add_argument(
        "--repeats",
        type=int,
        help=f"passes of each system, interleaved (default {REPEATS}; 1 with --smoke)",
    )
    parser.add_argument("--peers-dir", type=Path, default=PEERS_DIR, help=f"default {PEERS_DIR}")
    parser.add_argument("--keep", action="store_true", help="keep the systems' directories")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the stopped run of the same options from its .partial.json in --out "
        "(bench.peers_passes), skipping the passes it holds",
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
    if bench.shared_encoder:  # every process of the run inherits the index-side thread pools
        os.environ.update(dict(SHARED.pools))
    repeats = args.repeats or (1 if args.smoke else REPEATS)
    identity = {**bench.identity(), "repeats": repeats, "chunk": CHUNK, "host": report.host()}
    passes = Passes.begin(out / f"{result_name(bench)}.partial.json", identity, args.resume)
    missing: list[str] = []
    for peer in peers:
        reason = peer.missing(args.peers_dir)
        if reason is not None:
            log.warning("%s", reason)
            missing.append(reason)
    runnable = [peer for peer in peers if peer.missing(args.peers_dir) is None]
    work = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    try:
        for repetition in range(1, repeats + 1):
            if "ours" in systems and not passes.done(repetition, "ours"):
                measure = beside_encoder(bench, lambda w: ours(bench, w, args))
                passes.add(timed_run(repetition, "ours", measure, work))
            for peer in runnable:
                if passes.done(repetition, peer.name) or peer.name in passes.failures:
                    continue
                try:
                    passes.add(
                        timed_run(
                            repetition,
                            peer.name,
                            beside_encoder(bench, lambda w, p=peer: drive_peer(bench, p, w, args)),
                            work,
                        )
                    )
                except (RuntimeError, subprocess.TimeoutExpired) as exc:  # the others still count
                    log.error("%s failed: %s", peer.name, exc)
                    lines = str(exc).strip().splitlines() or [type(exc).__name__]
                    passes.failures[peer.name] = f"{peer.name} failed: {lines[0]} … {lines[-1]}"
        passes.loads.append(list(os.getloadavg()))
        write(bench, passes, [*missing, *passes.failures.values()], out)
        passes.finish()
    finally:
        if args.keep:
            log.info("directories kept in %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


SETTLE_SECONDS = 60.0
"""Longest wait before a pass for the 1-minute load average to fall below the cores."""


def settle(cores: int, limit: float = SETTLE_SECONDS) -> None:
    """Wait (up to `limit` s) until the 1-minute load average is below the number of cores:
    right after a pass it still counts that pass's own work (it decays over about a minute),
    so each pass starts on a machine this benchmark is not still loading, and a load above
    the cores at a start is other work, as the table's header then says."""
    deadline = time.monotonic() + limit
    while os.getloadavg()[0] >= cores and time.monotonic() < deadline:
        time.sleep(2.0)


def timed_run(
    repetition: int, name: str, measure: Callable[[Path], list[Result]], work: Path
) -> list[dict[str, Any]]:
    """One system's pass from an empty directory, with the load average when it started: its
    rows (`Result.figures`)."""
    settle(os.cpu_count() or 1)
    load = os.getloadavg()
    (work / f"{name}-{repetition}").mkdir(parents=True)
    log.info("pass %d: %s (load average %.2f)", repetition, name, load[0])
    start = time.monotonic()
    results = measure(work / f"{name}-{repetition}")
    seconds = time.monotonic() - start
    for result in results:
        result.repetition, result.run, result.load_average_start = repetition, name, load
        result.pass_seconds = seconds
    return [result.figures() for result in results]


def beside_encoder(
    bench: Bench, measure: Callable[[Path], list[Result]]
) -> Callable[[Path], list[Result]]:
    """On the shared encoder, `measure` and then the encoder alone (peers_drivers.encoder_alone),
    whose docs/s and p50 every row of the pass notes: a pass's latency less the encoder's is what
    the system adds, read within minutes, as this host's speed drifts by more than that. Then
    ours' encoder alone, the same way: what ours' encoding code adds to the bare encoder."""
    if not bench.shared_encoder:
        return measure

    def then_encoder(work: Path) -> list[Result]:
        results = measure(work)
        alone = encoder_alone(bench, work / "encoder")
        alone |= encoder_alone(bench, work / "encoder-ours", path="ours")
        for result in results:
            result.notes |= alone
        return results

    return then_encoder


def result_name(bench: Bench) -> str:
    """peers, peers_shared (the shared encoder); peers[_shared]_reuters_N (Reuters) and
    peers[_shared]_scifact_N (`--docs` N of SciFact): a run on part of a corpus never replaces
    the table of the whole."""
    name = "peers" + ("_shared" if bench.shared_encoder else "")
    if not bench.labelled:
        return f"{name}_reuters_{len(bench.doc_ids)}"
    return f"{name}_scifact_{len(bench.doc_ids)}" if bench.subset else name


def write(bench: Bench, passes: Passes, skipped: Sequence[str], out: Path) -> Path:
    """<result_name>.json (every pass) and .md (rendered from it by bench.peers_report)."""
    figures = {
        **passes.identity,
        "corpus_description": bench.describe(),
        "shared_encoder": SHARED.describe() if bench.shared_encoder else None,
        "cores": os.cpu_count(),
        "started": passes.started,
        "finished": now(),
        "load_average": passes.loads,
        "peak_rss": "VmHWM",
        "rows": passes.rows,
        "skipped": list(skipped),
    }
    name = result_name(bench)
    title = "SciFact" if bench.labelled else f"{len(bench.doc_ids):,} Reuters sentences"
    title += " on one encoder" if bench.shared_encoder else ""
    report.write_json(out / f"{name}.json", figures)
    return report.write_text(
        out / f"{name}.md", f"# Peers on {title}\n\n" + peers_report.tables(figures)
    )
