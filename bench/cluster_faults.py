"""`python -m bench cluster-faults`: SIGKILL a shard's process while the Ray application serves.

The Ray application (`python -m service --ray`, a local Ray) holds a collection of 2 shards.
Each round kills one shard actor's process (found by its process title, `ray::ShardHost`) at a
random moment while a client, in turn, writes documents (synchronous writes of 10), runs an
ingest job (a background job of 1,000), or queries, and keeps going until Ray has restarted the
shard and the collection answers whole again. What a round records: calls answered and failed,
answers marked partial, and seconds from the kill until a whole answer. At the end every
acknowledged document (a write answered 201, or counted in an ingest job's `processed`) must be
stored: the lost ones are counted, and must be none.
"""

import argparse
import logging
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench import context, data, report
from bench.live import LiveServer

log = logging.getLogger(__name__)

COLLECTION = "faults"
SHARDS = 2
WRITE = 10
"""Documents per synchronous write."""
JOB = 1000
"""Documents per ingest job."""
PHASES = ("write", "ingest", "query")
SHARD_TITLE = "ray::ShardHost"
"""How a shard actor's process is titled (service.cluster.ShardHost)."""
WHOLE_WITHIN_S = 120.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kills", type=int, default=10, help="rounds, one SIGKILL each")
    parser.add_argument("--seed", type=int, default=0, help="of the moments of the kills")


def run(args: argparse.Namespace) -> int:
    ctx = context.from_args(args)
    kills = 2 if args.smoke else args.kills
    texts = data.load_reuters_sentences(ctx.root, limit=4000)
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-faults-"))
    server = LiveServer(work / "data", work / "server.log", ray=True)
    try:
        server.start(timeout=300)
        with server.client(timeout=120) as client:
            figures = kill_rounds(client, texts, kills, random.Random(args.seed))
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)
    report.write_json(ctx.out / "cluster_faults.json", figures)
    print(report.write_text(ctx.out / "cluster_faults.md", markdown(figures)))
    return 0


def kill_rounds(client: httpx.Client, texts: list[str], kills: int, rng: random.Random) -> dict:
    """Create the collection, run `kills` rounds against the server `client` talks to, then
    count what was acknowledged and is not stored."""
    created = client.post("/collections", json={"name": COLLECTION, "shards": SHARDS})
    if created.status_code != 201:
        raise RuntimeError(f"cannot create {COLLECTION}: {created.status_code} {created.text}")
    acknowledged: list[str] = []
    _write(client, [f"seed-{i}" for i in range(100)], texts[:100], acknowledged)
    rounds = [_round(client, texts, i, rng, acknowledged) for i in range(kills)]
    stored = _stored_ids(client)
    return {
        "kills": kills,
        "shards": SHARDS,
        "rounds": rounds,
        "acknowledged": len(acknowledged),
        "stored": len(stored),
        "lost": len(set(acknowledged) - stored),
    }


def _round(
    client: httpx.Client, texts: list[str], number: int, rng: random.Random, acknowledged: list
) -> dict[str, Any]:
    """One kill while a client writes, runs an ingest job or queries (PHASES, in turn)."""
    phase = PHASES[number % len(PHASES)]
    tally = {"ok": 0, "failed": 0, "partial": 0}
    errors: list[str] = []
    stop, killed = threading.Event(), threading.Event()
    whole_after: list[float] = []

    def work() -> None:
        batch = 0
        while not stop.is_set():
            if phase in ("write", "ingest"):
                size = WRITE if phase == "write" else JOB
                ids = [f"r{number}-{batch}-{j}" for j in range(size)]
                start = number * 997 + batch * size
                chosen = [texts[(start + j) % len(texts)] for j in range(size)]
                send = _write if phase == "write" else _ingest
                ok, error = send(client, ids, chosen, acknowledged)
                batch += 1
                partial = False
            else:
                ok, partial, error = _query(client, texts[(number * 31 + batch) % len(texts)])
                batch += 1
            tally["ok" if ok else "failed"] += 1
            tally["partial"] += partial
            if error and len(errors) < 5:
                errors.append(error)
            if killed.is_set() and ok and not partial and not whole_after:
                whole_after.append(time.monotonic())

    worker = threading.Thread(target=work)
    worker.start()
    time.sleep(rng.uniform(0.5, 2.0))
    pids = _shard_pids()
    victim = rng.choice(pids)
    os.kill(victim, signal.SIGKILL)
    kill_time = time.monotonic()
    killed.set()
    deadline = kill_time + WHOLE_WITHIN_S
    while time.monotonic() < deadline and not (whole_after and _restarted(victim)):
        time.sleep(0.2)
    time.sleep(1.0)  # and a while after
    stop.set()
    worker.join()
    restarted = _restarted(victim)
    answered, partial, _ = _query(client, texts[number])
    log.info("round %d (%s): %s, whole again: %s", number, phase, tally, bool(whole_after))
    return {
        "phase": phase,
        "calls": tally,
        "errors": errors,
        "restarted": restarted,
        "whole_after_seconds": whole_after[0] - kill_time if whole_after else None,
        "whole_at_end": answered and not partial,
    }


def _write(
    client: httpx.Client, ids: list[str], texts: list[str], acknowledged: list[str]
) -> tuple[bool, str | None]:
    body = {"documents": [{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)]}
    try:
        response = client.post(f"/collections/{COLLECTION}/documents", json=body)
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if response.status_code == 201:
        acknowledged.extend(ids)
        return True, None
    return False, f"{response.status_code} {response.text[:200]}"


def _ingest(
    client: httpx.Client, ids: list[str], texts: list[str], acknowledged: list[str]
) -> tuple[bool, str | None]:
    """An ingest job of the documents, polled until it ends: what it counts in `processed`
    is committed (its chunks form a prefix), so acknowledged."""
    body = {"documents": [{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)]}
    try:
        response = client.post(f"/collections/{COLLECTION}/ingest", json=body)
        if response.status_code != 202:
            return False, f"{response.status_code} {response.text[:200]}"
        job = response.json()["job"]
        while job["state"] not in ("done", "failed"):
            time.sleep(0.5)
            job = client.get(f"/jobs/{job['id']}").json()
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    acknowledged.extend(ids[: job["processed"]])
    return job["state"] == "done", job["error"]


def _query(client: httpx.Client, text: str) -> tuple[bool, bool, str | None]:
    """(answered, partial, error)."""
    try:
        response = client.post(f"/collections/{COLLECTION}/query", json={"text": text})
    except httpx.HTTPError as exc:
        return False, False, f"{type(exc).__name__}: {exc}"
    if response.status_code != 200:
        return False, False, f"{response.status_code} {response.text[:200]}"
    return True, bool(response.json()["partial"]), None


def _stored_ids(client: httpx.Client) -> set[str]:
    ids: set[str] = set()
    offset = 0
    while True:
        page = client.get(
            f"/collections/{COLLECTION}/documents", params={"offset": offset, "limit": 500}
        ).json()["documents"]
        if not page:
            return ids
        ids |= {doc["id"] for doc in page}
        offset += len(page)


def _shard_pids() -> list[int]:
    """Processes of live shard actors, by their title."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(SHARD_TITLE.encode()):
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def _restarted(victim: int) -> bool:
    """Whether every shard has a live process again, none of them the killed one."""
    pids = _shard_pids()
    return len(pids) >= SHARDS and victim not in pids


def markdown(figures: dict[str, Any]) -> str:
    rows = [
        [
            i,
            r["phase"],
            r["calls"]["ok"],
            r["calls"]["failed"],
            r["calls"]["partial"],
            "yes" if r["restarted"] else "no",
            "" if r["whole_after_seconds"] is None else f"{r['whole_after_seconds']:.1f}",
        ]
        for i, r in enumerate(figures["rounds"])
    ]
    return "\n".join(
        [
            "# Shard kills while the Ray application serves",
            "",
            "`python -m bench cluster-faults`: see bench/cluster_faults.py for what runs.",
            "",
            table(figures),
            "",
            report.markdown_table(
                [
                    "round",
                    "client",
                    "calls answered",
                    "calls failed",
                    "answers partial",
                    "shard restarted",
                    "s from the kill to a whole answer",
                ],
                rows,
            ),
            "",
        ]
    )


def table(figures: dict[str, Any]) -> str:
    """The totals of the kill rounds."""
    rounds = figures["rounds"]
    calls = {key: sum(r["calls"][key] for r in rounds) for key in ("ok", "failed", "partial")}
    seconds = [r["whole_after_seconds"] for r in rounds if r["whole_after_seconds"] is not None]
    return "\n".join(
        [
            f"{figures['kills']} SIGKILLs of a shard's process, {figures['shards']} shards, a "
            "local Ray (`bench/results/cluster_faults.json`):",
            "",
            report.markdown_table(
                ["", "value"],
                [
                    [
                        "documents acknowledged (a write answered 201, or in a job's `processed`)",
                        figures["acknowledged"],
                    ],
                    ["acknowledged and not stored (lost)", figures["lost"]],
                    ["calls answered / failed", f"{calls['ok']} / {calls['failed']}"],
                    ["answers marked partial", calls["partial"]],
                    ["rounds whose shard restarted", sum(r["restarted"] for r in rounds)],
                    ["rounds whole again at the end", sum(r["whole_at_end"] for r in rounds)],
                    [
                        "seconds from a kill to a whole answer (max)",
                        f"{max(seconds):.1f}" if seconds else "never",
                    ],
                ],
            ),
        ]
    )
