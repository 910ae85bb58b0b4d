"""Tuned as served, over HTTP: `/tune` on labelled examples, `apply`, then what the collection
answers for examples the tuner never chose on, beside what the tuner reported for them.

The documents are stored from cached vectors by the library (same model and backend as the
server's: encoding them through the server would add minutes and change nothing measured here),
then a real server (`python -m service`) is started on that data directory, and everything after
is HTTP, as a user would run it:

- SciFact: served nDCG@10 of the 300 test queries with the defaults; then `/tune/jobs` on the
  train queries with the test queries as `validation` (chosen on train only), `apply`, the test
  queries served again; then the same with no validation (a seeded 30 % of the train queries held
  out, the default), whose held-out figure is set beside the served test score. Describe's bytes
  per vector beside the chosen point's.
- STS-B: a collection of the unique sentences; `/tune` on the dev pairs with the test pairs as
  `validation`, `apply`, then `/similarity` through the collection on the test pairs (Spearman).
"""

import argparse
import logging
import os
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import context, data, report, stored
from bench.live import LiveServer, wait_job
from index import Collection
from index.metrics import ndcg_at_k, spearman
from index.validation import unit_rows
from service.config import ServerSettings

log = logging.getLogger(__name__)

MAX_K = 128
"""The tuner's largest k: the service's default k, so a tuned point costs no more bytes."""
TOP_K = 10
TUNE_SECONDS = 3600.0
SMOKE_DOCS = 200
SMOKE_PAIRS = 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tasks", nargs="+", choices=("scifact", "stsb"), default=["scifact", "stsb"]
    )


def run(args: argparse.Namespace) -> int:
    ctx = context.from_args(args)
    results: dict[str, Any] = {"load_average": os.getloadavg(), "smoke": args.smoke}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if "scifact" in args.tasks:
            results["scifact"] = scifact(ctx, root, args.smoke)
        if "stsb" in args.tasks:
            results["stsb"] = stsb(ctx, root, args.smoke)
    report.write_json(ctx.out / "served_tuning.json", results)
    report.write_text(ctx.out / "served_tuning.md", f"# Tuned as served\n\n{table(results)}")
    return 0


def _store(
    ctx: context.RunContext, root: Path, name: str, ids: list[str], texts: list[str], vectors: Any
) -> None:
    """A collection with the server's default settings holding `texts`, fitted, closed."""
    settings = ServerSettings().collection_settings(vectors.shape[1])
    path = root / "data" / name
    path.parent.mkdir(exist_ok=True)
    collection = Collection.create(
        path, ctx.encoder.model_id, vectors.shape[1], settings, ctx.encoder
    )
    stored.store(collection, ids, texts, vectors)
    collection.fit()
    collection.close()


def _serve(root: Path) -> LiveServer:
    return LiveServer(root / "data", root / "server.log").start()


def _tune(client: httpx.Client, name: str, body: dict[str, Any]) -> dict[str, Any]:
    started = client.post(f"/collections/{name}/tune/jobs", json=body)
    started.raise_for_status()
    job = wait_job(client, started.json()["id"], timeout=TUNE_SECONDS, interval=1.0)
    if job["state"] != "done":
        raise RuntimeError(f"tune of {name} failed: {job.get('error')}")
    return job["result"]


def _point(tuned: dict[str, Any]) -> dict[str, Any]:
    chosen = tuned["chosen"]
    keys = ("beta", "gamma", "k", "index_spec", "rescore", "rescore_k", "candidates")
    return {key: chosen[key] for key in keys} | {
        "train": chosen["train"],
        "held_out": chosen["held_out"],
        "held_out_raw": tuned["held_out_raw"],
        "bytes_per_vector": chosen["bytes_per_vector"],
        "n_train": tuned["n_train"],
        "n_held_out": tuned["n_held_out"],
    }


def scifact(ctx: context.RunContext, root: Path, smoke: bool) -> dict[str, Any]:
    beir = data.load_scifact(ctx.root, limit_docs=SMOKE_DOCS if smoke else None)
    docs = ctx.cache.encode(ctx.encoder, beir.documents, "SciFact documents")
    queries = ctx.cache.encode(ctx.encoder, beir.queries, "SciFact queries")
    _store(ctx, root, "scifact", beir.doc_ids, beir.documents, docs)

    def labelled(split: str) -> tuple[list[dict[str, Any]], list[dict[str, int]]]:
        rows, judged = beir.judged(split)
        relevant = [{d: g for d, g in grades.items() if g > 0} for grades in judged]
        bodies = [
            {"text": beir.queries[r], "relevant": j} for r, j in zip(rows, relevant, strict=True)
        ]
        return bodies, relevant

    train, _ = labelled("train")
    test, test_relevant = labelled("test")
    rows, _ = beir.judged("test")
    exact = np.argsort(-(unit_rows(queries[rows]) @ unit_rows(docs).T), axis=1)[:, :TOP_K]
    raw = ndcg_at_k([[beir.doc_ids[i] for i in ranked] for ranked in exact], test_relevant, TOP_K)

    def served(client: httpx.Client) -> float:
        answer = client.post(
            "/collections/scifact/query",
            json={"texts": [q["text"] for q in test], "top_k": TOP_K},
        )
        answer.raise_for_status()
        found = [[hit["id"] for hit in result["hits"]] for result in answer.json()["results"]]
        return ndcg_at_k(found, test_relevant, TOP_K)

    out: dict[str, Any] = {
        "documents": len(docs),
        "train": len(train),
        "test": len(test),
        "exact_raw": raw,
    }
    with closing(_serve(root)) as server, server.client() as client:
        out["served_default"] = served(client)
        for label, extra in (("validation", {"validation": {"queries": test}}), ("held_out", {})):
            body = {"queries": train, "max_k": MAX_K, "apply": True, **extra}
            point = _point(_tune(client, "scifact", body))
            point["served_test"] = served(client)
            described = client.get("/collections/scifact").json()
            point["described_bytes_per_vector"] = described["index_bytes_per_vector"]
            out[label] = point
            log.info("SciFact %s: %s", label, point)
    return out


def stsb(ctx: context.RunContext, root: Path, smoke: bool) -> dict[str, Any]:
    sts = data.load_stsb(ctx.root, limit=SMOKE_PAIRS if smoke else None)
    vectors = ctx.cache.encode(ctx.encoder, sts.sentences, "STS-B sentences")
    ids = [str(i) for i in range(len(sts.sentences))]
    _store(ctx, root, "stsb", ids, sts.sentences, vectors)

    def pairs(split: str) -> list[dict[str, Any]]:
        part = sts.splits[split]
        return [
            {"text1": sts.sentences[a], "text2": sts.sentences[b], "score": float(g)}
            for a, b, g in zip(part.first, part.second, part.gold, strict=True)
        ]

    dev, test = pairs("dev"), pairs("test")

    def served(client: httpx.Client, collection: str | None) -> float:
        body: dict[str, Any] = {"pairs": [{"text1": p["text1"], "text2": p["text2"]} for p in test]}
        if collection is not None:
            body["collection"] = collection
        answer = client.post("/similarity", json=body)
        answer.raise_for_status()
        return spearman(answer.json()["scores"], [p["score"] for p in test])

    out: dict[str, Any] = {"sentences": len(ids), "dev": len(dev), "test": len(test)}
    with closing(_serve(root)) as server, server.client() as client:
        out["served_raw"] = served(client, None)
        body = {"pairs": dev, "max_k": MAX_K, "apply": True, "validation": {"pairs": test}}
        point = _point(_tune(client, "stsb", body))
        point["served_test"] = served(client, "stsb")
        out["validation"] = point
        log.info("STS-B: %s", point)
    return out


def table(results: dict[str, Any]) -> str:
    """Markdown of a `served_tuning.json` result: tuned (held-out) against served, per run."""
    lines = []
    for task, metric, reference in (
        ("scifact", "nDCG@10", "exact_raw"),
        ("stsb", "Spearman", "served_raw"),
    ):
        figures = results.get(task)
        if figures is None:
            continue
        for label in ("validation", "held_out"):
            point = figures.get(label)
            if point is None:
                continue
            held_out = "test" if label == "validation" else f"{point['n_held_out']} train"
            lines.append(
                [
                    "SciFact" if task == "scifact" else "STS-B",
                    metric,
                    f"{point['n_train']} train / {held_out}",
                    _chosen(point),
                    f"{100 * point['train']:.2f}",
                    f"{100 * point['held_out']:.2f}",
                    f"{100 * point['held_out_raw']:.2f}",
                    f"{100 * point['served_test']:.2f}",
                    f"{100 * figures[reference]:.2f}",
                    "–"
                    if point["bytes_per_vector"] is None
                    else f"{point['bytes_per_vector']:.1f}",
                ]
            )
    header = [
        "set",
        "metric",
        "chosen on / held out",
        "chosen point",
        "tuner: train",
        "tuner: held out",
        "tuner: raw on held out",
        "served on test after apply",
        "raw cosine on test",
        "bytes/vector",
    ]
    load = ", ".join(f"{x:.1f}" for x in results["load_average"])
    untuned = ""
    if "scifact" in results:
        untuned = (
            f" SciFact test served by the untuned defaults: "
            f"{100 * results['scifact']['served_default']:.2f}."
        )
    return (
        report.markdown_table(header, lines)
        + f"\n\nLoad average {load} at the start (quality figures do not depend on it)."
        + untuned
        + "\n"
    )


def _chosen(point: dict[str, Any]) -> str:
    kernel = f"β={point['beta']:g} γ={point['gamma']:g} k={point['k']}"
    return " ".join(filter(None, [kernel, point["index_spec"], _rescoring(point)]))


def _rescoring(point: dict[str, Any]) -> str:
    if point["rescore"] != "kernel":
        return f"re-scored {point['rescore']}"
    candidates = "" if point["candidates"] is None else f", {point['candidates']} candidates"
    return f"kernel re-scoring at {point['rescore_k']}{candidates}"
