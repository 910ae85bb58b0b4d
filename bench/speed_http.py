"""Speed measured over HTTP against a running server: ingest, query latency, concurrent clients.

What a user of the service sees, timed at the client; the server's own split of a query (encode,
search) comes from its Server-Timing header. Also used by bench.distributed (ingest) and
bench.peers_ours (Server-Timing).
"""

import json
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx

from bench.report import percentiles
from bench.speed_report import COLLECTION

TOP_K = 10


def checked(response: httpx.Response) -> Any:
    """The JSON of a response; RuntimeError with the URL, status and body on an error status."""
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    return response.json()


def ingest(client: httpx.Client, corpus: Sequence[str], poll: float) -> dict[str, Any]:
    """Create the collection (server defaults) and ingest the corpus as one background job."""
    checked(client.post("/collections", json={"name": COLLECTION}))
    documents = [{"id": f"r{i}", "text": text} for i, text in enumerate(corpus)]
    body = json.dumps({"documents": documents}).encode()
    load = os.getloadavg()
    started = time.perf_counter()
    response = client.post(
        f"/collections/{COLLECTION}/ingest",
        content=body,
        headers={"content-type": "application/json"},
    )
    job = checked(response)["job"]
    while job["state"] not in ("done", "failed"):
        time.sleep(poll)
        job = checked(client.get(f"/jobs/{job['id']}"))
    seconds = time.perf_counter() - started
    if job["state"] != "done" or not job["fitted"]:
        raise RuntimeError(f"ingest job ended {job['state']}: {job['error'] or job['fit_error']}")
    return {
        "documents": len(corpus),
        "load_average": (load, os.getloadavg()),
        "body_bytes": len(body),
        "seconds": seconds,
        "docs_per_second": len(corpus) / seconds,
        "job": job,
    }


def server_timing(header: str) -> dict[str, float]:
    """{"encode": ms, "search": ms} from a Server-Timing header."""
    out = {}
    for part in header.split(","):
        name, _, duration = part.strip().partition(";dur=")
        if duration:
            out[name] = float(duration)
    return out


def latency(client: httpx.Client, pool: Sequence[str], times: int, batch: int) -> dict[str, Any]:
    """Sequential queries of `batch` texts each (1: the `text` field), after 3 warm-up calls."""

    def body(i: int) -> dict[str, Any]:
        if batch == 1:
            return {"text": pool[i % len(pool)], "top_k": TOP_K}
        return {"texts": [pool[(i * batch + j) % len(pool)] for j in range(batch)], "top_k": TOP_K}

    path = f"/collections/{COLLECTION}/query"
    for i in range(3):
        checked(client.post(path, json=body(times + i)))
    wall, encode, search = [], [], []
    for i in range(times):
        started = time.perf_counter()
        response = client.post(path, json=body(i))
        wall.append(1000 * (time.perf_counter() - started))
        checked(response)
        timing = server_timing(response.headers.get("server-timing", ""))
        encode.append(timing.get("encode", float("nan")))
        search.append(timing.get("search", float("nan")))
    return {
        "batch": batch,
        "wall_ms": percentiles(wall),
        "encode_ms": percentiles(encode),
        "search_ms": percentiles(search),
    }


def concurrent(url: str, pool: Sequence[str], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` threads, each with its own connection, sending single queries back to back for
    `seconds`; queries/s counts the answers over the time from the start to the last answer.
    The clock starts once every client has connected and had its warm-up query answered."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    ends = [0.0] * clients
    clock = [0.0, 0.0]  # start, deadline: set by the last client to reach the barrier

    def start_clock() -> None:
        clock[0] = time.perf_counter()
        clock[1] = clock[0] + seconds

    ready = threading.Barrier(clients, action=start_clock)
    path = f"/collections/{COLLECTION}/query"

    def worker(number: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            try:
                checked(client.post(path, json={"text": pool[number % len(pool)], "top_k": TOP_K}))
            except BaseException:
                ready.abort()  # the other clients stop waiting for this one
                raise
            ready.wait()
            i = number
            while time.perf_counter() < clock[1]:
                started = time.perf_counter()
                try:
                    response = client.post(path, json={"text": pool[i % len(pool)], "top_k": TOP_K})
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies[number].append(1000 * (time.perf_counter() - started))
                else:
                    errors[number] += 1
                i += clients
            ends[number] = time.perf_counter()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if ready.broken:
        raise RuntimeError("a client's warm-up query failed (its traceback is above)")
    elapsed = max(ends) - clock[0]
    answered = [ms for per_client in latencies for ms in per_client]
    return {
        "clients": clients,
        "seconds": elapsed,
        "queries": len(answered),
        "errors": sum(errors),
        "queries_per_second": len(answered) / elapsed,
        "ms": percentiles(answered) if answered else None,
    }


def compression_report(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """POST /collections/{name}/report, timed from outside (the call blocks until it is done)."""
    started = time.perf_counter()
    result = checked(client.post(f"/collections/{COLLECTION}/report", json=body))
    return {
        "request": body,
        "wall_seconds": time.perf_counter() - started,
        "server_seconds": result["seconds"],
        "n_queries": result["n_queries"],
        "rows": result["rows"],
    }
