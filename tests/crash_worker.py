"""Writes to a collection in an endless loop, announcing each write before and after it.

Run by tests/test_persistence.py, which kills it with SIGKILL at random moments. Lines on stdout:
    BEGIN <op> <json>   the write is about to start (it may or may not land)
    ACK <op> <json>     the write returned: it must survive any crash from now on
"""

import json
import random
import sys
from pathlib import Path

import numpy as np

from index import Collection, Document, Settings

SPECS = ["Flat", "HNSW32", "SQ8"]


def say(kind: str, op: str, payload: object) -> None:
    sys.stdout.write(f"{kind} {op} {json.dumps(payload)}\n")
    sys.stdout.flush()


def main(path: Path, vectors_file: Path, run: int) -> None:
    vectors = np.load(vectors_file)
    rng = random.Random(run)
    if not (path / "manifest.json").exists():
        Collection.initialise(path, "test-model", vectors.shape[1], Settings(k=32))
    collection = Collection(path)
    serial = 0
    while True:
        op = rng.choices(["add", "upsert", "delete", "fit"], weights=[5, 2, 2, 1])[0]
        existing = [d.id for d in collection.documents(0, 10_000)]
        if op == "add":
            ids = [f"r{run}-{serial + i}" for i in range(rng.randint(1, 40))]
            serial += len(ids)
            rows = rng.sample(range(len(vectors)), len(ids))
            payload: object = ids
            say("BEGIN", op, payload)
            collection.add_vectors([Document(f"text of {i}", id=i) for i in ids], vectors[rows])
        elif op == "upsert" and existing:
            ids = rng.sample(existing, min(len(existing), rng.randint(1, 5)))
            text = f"upserted in run {run} #{serial}"
            serial += 1
            payload = {"ids": ids, "text": text}
            say("BEGIN", op, payload)
            rows = rng.sample(range(len(vectors)), len(ids))
            collection.add_vectors([Document(text, id=i) for i in ids], vectors[rows], upsert=True)
        elif op == "delete" and len(existing) > 10:
            payload = rng.sample(existing, rng.randint(1, 5))
            say("BEGIN", op, payload)
            collection.delete(payload)
        elif op == "fit" and len(existing) >= 40:
            payload = {
                "beta": rng.choice([0.0, 0.5, 1.0]),
                "gamma": rng.choice([0.0, 0.5]),
                "k": rng.choice([16, 32]),
                "index_spec": rng.choice(SPECS),
            }
            say("BEGIN", op, payload)
            collection.fit(**payload)
        else:
            continue
        say("ACK", op, payload)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
