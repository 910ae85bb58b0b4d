"""Bytes per vector as served: each setting fitted on a real collection and queried through it.

`index.compression.report` scores indexes beside a collection with the raw vectors in memory;
this measures what a user gets: `Collection.fit(**setting)` on a collection on disk, then
`Collection.answer` per query (kernel, FAISS search, the SQLite reads of the candidates' raw
vectors, re-scoring), the index's resident bytes per vector as describe reports them (codes,
per-vector factors, id runs), and quality: nDCG@10 on SciFact's test queries, recall@10 against
exact raw cosine on Reuters sentences (queries: the sentences after the corpus). Settings are
measured in rounds (every setting once per round), and each one's latency is compared with the
service default's in the same round.
"""

import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import data, report
from bench.context import RunContext
from index import Collection, Document
from index.metrics import ndcg_at_k
from index.validation import unit_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setting:
    """A collection setting under test (`Collection.fit` keywords) and its label."""

    label: str
    k: int
    index_spec: str
    rescore: str = "kernel"
    candidates: int | None = None

    def fit_keywords(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "index_spec": self.index_spec,
            "rescore": self.rescore,
            "candidates": self.candidates,
        }


DEFAULT = Setting("service default", 128, "SQ8")
SETTINGS = (
    Setting("exact raw cosine", 384, "Flat", "off"),
    DEFAULT,
    Setting("RaBitQ k=64", 64, "RaBitQ", candidates=40),
    Setting("RaBitQ k=64", 64, "RaBitQ", candidates=200),
    Setting("RaBitQ k=64", 64, "RaBitQ", candidates=400),
    Setting("binary k=128", 128, "BFlat", candidates=200),
    Setting("binary k=128", 128, "BFlat", candidates=400),
    Setting("PQ16 k=128", 128, "PQ16", candidates=200),
    Setting("binary k=64", 64, "BFlat", candidates=400),
    Setting("binary k=64", 64, "BFlat", candidates=800),
    Setting("PQ8 k=64", 64, "PQ8", candidates=400),
)
SMOKE_SETTINGS = (DEFAULT, Setting("binary k=64", 64, "BFlat", candidates=200))
LATENCY_QUERIES = 100
TOP_K = 10


@dataclass(frozen=True)
class Measured:
    setting: Setting
    bytes_per_vector: float
    quality: float
    latency_ms: list[float]
    """Median ms of one query, per round."""
    added_ms: list[float]
    """The median minus the service default's median in the same round, per round."""


def scifact(ctx: RunContext, smoke: bool, rounds: int) -> Path:
    load = os.getloadavg()
    beir = data.load_scifact(ctx.root, limit_docs=200 if smoke else None, splits=("test",))
    docs = ctx.cache.encode(ctx.encoder, beir.documents, "SciFact documents")
    queries = ctx.cache.encode(ctx.encoder, beir.queries, "SciFact queries")
    rows, judged = beir.judged("test")
    relevant = [{d: g for d, g in grades.items() if g > 0} for grades in judged]

    def quality(answer: Callable[[np.ndarray], list[str]]) -> float:
        return ndcg_at_k([answer(q) for q in queries[rows]], relevant, k=TOP_K)

    measured = _measure(
        ctx, beir.doc_ids, beir.documents, docs, queries[rows], quality, smoke, rounds
    )
    return _write(ctx.out, "scifact", measured, (len(docs), len(rows)), "nDCG@10", rounds, load)


def reuters(ctx: RunContext, n_docs: int, smoke: bool, rounds: int, n_queries: int = 200) -> Path:
    load = os.getloadavg()
    texts = data.load_reuters_sentences(ctx.root, limit=n_docs + n_queries)
    vectors = ctx.cache.encode(ctx.encoder, texts, "Reuters sentences")
    corpus, queries = vectors[:n_docs], vectors[n_docs:]
    ids = [str(i) for i in range(n_docs)]
    exact = unit_rows(queries) @ unit_rows(corpus).T
    tenth = -np.partition(-exact, TOP_K - 1, axis=1)[:, TOP_K - 1]

    def recall(answer: Callable[[np.ndarray], list[str]]) -> float:
        """Found documents whose exact cosine reaches the 10th best (duplicates tie)."""
        hits = 0
        for i, query in enumerate(queries):
            found = np.array([int(doc_id) for doc_id in answer(query)], np.int64)
            hits += min(TOP_K, int((exact[i, found] >= tenth[i] - 1e-6).sum()))
        return hits / (TOP_K * len(queries))

    texts = texts[:n_docs]
    measured = _measure(ctx, ids, texts, corpus, queries, recall, smoke, rounds)
    sizes = (n_docs, len(queries))
    return _write(ctx.out, "reuters", measured, sizes, "recall@10", rounds, load)


def _measure(
    ctx: RunContext,
    ids: Sequence[str],
    texts: Sequence[str],
    vectors: np.ndarray,
    queries: np.ndarray,
    quality: Callable[[Callable[[np.ndarray], list[str]]], float],
    smoke: bool,
    rounds: int,
) -> list[Measured]:
    settings = SMOKE_SETTINGS if smoke else SETTINGS
    latencies: dict[Setting, list[float]] = {s: [] for s in settings}
    scores: dict[Setting, float] = {}
    sizes: dict[Setting, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        collection = Collection.create(Path(folder) / "c", ctx.encoder.model_id, vectors.shape[1])
        for start in range(0, len(ids), 10_000):
            chunk = slice(start, start + 10_000)
            documents = [Document(t, id=i) for i, t in zip(ids[chunk], texts[chunk], strict=True)]
            collection.add_vectors(documents, vectors[chunk], fit=False)
        for round_number in range(rounds):
            for setting in settings:
                collection.fit(**setting.fit_keywords())

                def answer(query: np.ndarray) -> list[str]:
                    return [hit.id for hit in collection.answer(query[None, :], TOP_K).hits[0]]

                if round_number == 0:
                    scores[setting] = quality(answer)
                    sizes[setting] = float(collection.describe()["index_bytes_per_vector"])
                latencies[setting].append(_median_ms(answer, queries[:LATENCY_QUERIES]))
                log.info("%s: %.3f ms", setting, latencies[setting][-1])
        collection.close()
    default = latencies[DEFAULT]
    return [
        Measured(
            setting,
            sizes[setting],
            scores[setting],
            latencies[setting],
            [mine - theirs for mine, theirs in zip(latencies[setting], default, strict=True)],
        )
        for setting in settings
    ]


def _median_ms(answer: Callable[[np.ndarray], list[str]], queries: np.ndarray) -> float:
    answer(queries[0])  # warm the SQLite connection of this thread
    timings = []
    for query in queries:
        started = time.perf_counter()
        answer(query)
        timings.append(time.perf_counter() - started)
    return 1000 * float(np.median(timings))


def _write(
    out: Path,
    name: str,
    measured: list[Measured],
    sizes: tuple[int, int],
    metric: str,
    rounds: int,
    load: tuple[float, float, float],
) -> Path:
    reference = measured[0].quality if measured[0].setting.rescore == "off" else None
    payload = {
        "documents": sizes[0],
        "queries": sizes[1],
        "metric": metric,
        "rounds": rounds,
        "load_average": load,
        "rows": [
            {
                **asdict(m.setting),
                "bytes_per_vector": m.bytes_per_vector,
                "quality": m.quality,
                "share_of_exact": None if reference is None else m.quality / reference,
                "latency_ms": m.latency_ms,
                "added_ms": m.added_ms,
            }
            for m in measured
        ],
    }
    report.write_json(out / f"served_bytes_{name}.json", payload)
    text = f"# Bytes per vector as served: {name}\n\n{table(payload)}"
    return report.write_text(out / f"served_bytes_{name}.md", text)


def table(payload: dict[str, Any]) -> str:
    """Markdown of a `served_bytes_*.json` result (the README's tables are rendered from it)."""
    load = ", ".join(f"{x:.1f}" for x in payload["load_average"])
    cores = os.cpu_count() or 1
    busy = (
        f" (**above the machine's {cores} cores: the milliseconds include waiting for a core**)"
        if payload["load_average"][0] > cores
        else ""
    )
    header = [
        "setting",
        "k",
        "index",
        "re-score",
        "candidates",
        "bytes/vector",
        f"{payload['metric']} ×100",
        "% of exact",
        "ms/query (median of rounds)",
        "added ms vs default",
    ]
    lines = []
    for row in payload["rows"]:
        share = row["share_of_exact"]
        lines.append(
            [
                row["label"],
                row["k"],
                row["index_spec"],
                row["rescore"],
                row["candidates"] or "default",
                f"{row['bytes_per_vector']:.1f}",
                f"{100 * row['quality']:.2f}",
                "–" if share is None else f"{100 * share:.1f}",
                f"{np.median(row['latency_ms']):.2f}",
                f"{np.median(row['added_ms']):+.2f}",
            ]
        )
    return (
        f"{payload['documents']} documents, "
        f"{payload['queries']} queries; every setting fitted on one collection on disk and "
        "queried through `Collection.answer` (kernel, FAISS, SQLite reads of the candidates' "
        f"raw vectors, re-scoring), {payload['rounds']} round(s), load average {load} at the "
        f"start{busy}. Bytes per vector: the index as resident (codes, per-vector factors, id "
        "runs).\n\n" + report.markdown_table(header, lines) + "\n"
    )
