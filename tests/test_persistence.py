"""Kill -9 a writer at random moments: every acknowledged write survives, no write shows by half.

WHITENED_TEST_KILLS sets the number of kills (default 25) for longer runs.
"""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from index import Collection

WORKER = Path(__file__).with_name("crash_worker.py")
KILLS = int(os.environ.get("WHITENED_TEST_KILLS", "25"))


@dataclass
class Expected:
    """What the collection must hold, from the acknowledged writes."""

    texts: dict[str, str] = field(default_factory=dict)
    settings: dict | None = None


def _run_and_kill(
    path: Path, vectors: Path, run: int, delay: float
) -> list[tuple[str, str, object]]:
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), str(path), str(vectors), str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    first = worker.stdout.readline()  # wait until it writes, then let it run a little
    time.sleep(delay)
    worker.send_signal(signal.SIGKILL)
    rest, errors = worker.communicate(timeout=60)
    assert worker.returncode == -signal.SIGKILL, errors
    events = []
    for line in (first + rest).splitlines():
        kind, op, payload = line.split(" ", 2)
        events.append((kind, op, json.loads(payload)))
    return events


def _apply(expected: Expected, op: str, payload, run: int) -> None:
    if op == "add":
        expected.texts |= {i: f"text of {i}" for i in payload}
    elif op == "upsert":
        expected.texts |= {i: payload["text"] for i in payload["ids"]}
    elif op == "delete":
        for i in payload:
            expected.texts.pop(i)
    elif op == "fit":
        expected.settings = payload


def _landed(collection: Collection, op: str, payload, expected: Expected) -> bool:
    """Whether an unacknowledged write is in the store: all of it, or none (else fail)."""
    present = {d.id: d.text for d in collection.documents(0, 1_000_000)}
    if op == "add":
        states = {i in present for i in payload}
    elif op == "delete":
        states = {i not in present for i in payload}
    elif op == "upsert":
        states = {present.get(i) == payload["text"] for i in payload["ids"]}
    else:
        settings = collection.manifest.settings
        return (settings.beta, settings.gamma, settings.k, settings.index_spec) == tuple(
            payload.values()
        )
    assert len(states) == 1, f"half of an unacknowledged {op} is visible: {payload}"
    return states.pop()


def _check_consistent(collection: Collection, expected: Expected, vectors: np.ndarray) -> None:
    present = {d.id: d.text for d in collection.documents(0, 1_000_000)}
    assert present == expected.texts
    rows, raw = collection.raw_vectors()
    with sqlite3.connect(collection.path / "documents.sqlite") as store:
        stored = store.execute("SELECT row, vector FROM documents ORDER BY row").fetchall()
    assert rows.tolist() == [row for row, _ in stored]
    blobs = b"".join(vector for _, vector in stored)  # the mapped vectors are the committed ones
    assert np.array_equal(raw, np.frombuffer(blobs, "<f4").reshape(raw.shape))
    if collection.index is None:
        assert len(rows) < 2
        return
    assert collection.index.ntotal == len(rows) == collection.count()
    assert set(collection.index.ids().tolist()) == set(rows.tolist())
    kernel, settings = collection.kernel, collection.manifest.settings
    assert (kernel.beta, kernel.gamma, kernel.k) == (settings.beta, settings.gamma, settings.k)
    assert collection.index.spec == settings.index_spec
    if expected.settings is not None:
        assert settings.index_spec == expected.settings["index_spec"]
    hits = collection.search_vectors(vectors[:2], top_k=3)
    assert all(len(h) == min(3, len(rows)) for h in hits)


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_acknowledged_write(
    tmp_path: Path, corpus_vectors: np.ndarray
) -> None:
    vectors_file = tmp_path / "vectors.npy"
    np.save(vectors_file, corpus_vectors)
    path = tmp_path / "collection"
    expected = Expected()
    rng = random.Random(20261123)
    in_flight_kills = 0
    for run in range(KILLS):
        events = _run_and_kill(path, vectors_file, run, delay=rng.uniform(0.0, 0.6))
        pending = None
        for kind, op, payload in events:
            if kind == "BEGIN":
                pending = (op, payload)
            else:
                _apply(expected, op, payload, run)
                pending = None
        collection = Collection(path)
        try:
            if pending is not None:
                in_flight_kills += 1
                if _landed(collection, *pending, expected):
                    _apply(expected, *pending, run)
            _check_consistent(collection, expected, corpus_vectors)
        finally:
            collection.close()
    # The worker writes back to back, so most kills cut a write; a loaded machine lowers the share.
    assert in_flight_kills >= KILLS // 4, "too few kills landed in the middle of a write"
    assert len(expected.texts) > 0
