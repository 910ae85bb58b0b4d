"""Bytes per vector as served: each setting fitted on a real collection and queried through it.

`index.compression.report` scores indexes beside a collection with the raw vectors in memory;
this measures what a user gets: the server's default settings with a few changed, fitted
(`Collection.fit`) on a collection on disk, then `Collection.answer` per query (kernel, FAISS
search, the reads of the candidates' raw vectors from the mapped file, re-scoring), the
index's resident bytes per vector as describe reports them (codes, per-vector factors, id runs),
and quality: nDCG@10 on SciFact's test queries, recall@10 against
exact raw cosine on Reuters sentences (queries: the sentences after the corpus). Settings are
measured in rounds (every setting once per round), and each one's latency is compared with the
service default's in the same round. bench.served_bytes_report renders the tables.
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

from bench import data, report, stored
from bench.context import RunContext
from bench.served_bytes_report import table
from index import Collection, Settings
from index.metrics import ndcg_at_k
from index.validation import unit_rows
from service.config import ServerSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setting:
    """A setting under test: its label and what it changes of the server's defaults."""

    label: str
    changes: tuple[tuple[str, Any], ...] = ()


def _setting(label: str, **changes: Any) -> Setting:
    return Setting(label, tuple(changes.items()))


DEFAULT = _setting("service default")
SETTINGS = (
    _setting("exact raw cosine", k=None, index_spec="Flat", rescore="off"),
    DEFAULT,
    _setting("RaBitQ k=64", k=64, index_spec="RaBitQ", candidates=40),
    _setting("RaBitQ k=64", k=64, index_spec="RaBitQ", candidates=200),
    _setting("RaBitQ k=64", k=64, index_spec="RaBitQ", candidates=400),
    _setting("binary k=128", k=128, index_spec="BFlat", candidates=200),
    _setting("binary k=128", k=128, index_spec="BFlat", candidates=400),
    _setting("binary k=128", k=128, index_spec="BFlat", candidates=1600),
    _setting("PQ16 k=128", k=128, index_spec="PQ16", candidates=200),
    _setting("PQ16 k=128", k=128, index_spec="PQ16", candidates=800),
    _setting("binary k=64", k=64, index_spec="BFlat", candidates=400),
    _setting("binary k=64", k=64, index_spec="BFlat", candidates=800),
    _setting("PQ8 k=64", k=64, index_spec="PQ8", candidates=400),
    _setting("PQ8 k=64", k=64, index_spec="PQ8", candidates=1600),
    _setting("PQ14 k=112", k=112, index_spec="PQ14", candidates=1600),
    _setting("PQ14 k=112", k=112, index_spec="PQ14", candidates=3200),
    _setting("RR,PQ28x4fs k=112", k=112, index_spec="RR,PQ28x4fs", candidates=800),
    _setting("RR,PQ28x4fs k=112", k=112, index_spec="RR,PQ28x4fs", candidates=1600),
    _setting("PQ16x4fs k=64", k=64, index_spec="PQ16x4fs", candidates=1600),
    _setting("PQ16x4fs k=64", k=64, index_spec="PQ16x4fs", candidates=3200),
    _setting("PQ16x4fs k=64", k=64, index_spec="PQ16x4fs", candidates=6400, shortlist=100),
    _setting("PQ16x4fs k=64", k=64, index_spec="PQ16x4fs", candidates=6400, shortlist=200),
    _setting("PQ14x4fs k=56", k=56, index_spec="PQ14x4fs", candidates=6400, shortlist=100),
)
SMOKE_SETTINGS = (
    DEFAULT,
    _setting("binary k=64", k=64, index_spec="BFlat", candidates=200),
    _setting("binary k=64", k=64, index_spec="BFlat", candidates=200, shortlist=50),
)
LATENCY_QUERIES = 100
TOP_K = 10


@dataclass(frozen=True)
class Measured:
    label: str
    settings: Settings
    """What the collection served: the server's defaults with the setting's changes."""
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
    chosen = SMOKE_SETTINGS if smoke else SETTINGS
    defaults = ServerSettings().collection_settings(vectors.shape[1])
    served = {s: defaults.updated(**dict(s.changes)) for s in chosen}
    latencies: dict[Setting, list[float]] = {s: [] for s in chosen}
    scores: dict[Setting, float] = {}
    sizes: dict[Setting, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        collection = Collection.create(Path(folder) / "c", ctx.encoder.model_id, vectors.shape[1])
        stored.store(collection, ids, texts, vectors)
        for round_number in range(rounds):
            for setting in chosen:
                collection.fit(**asdict(served[setting]))

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
            setting.label,
            served[setting],
            sizes[setting],
            scores[setting],
            latencies[setting],
            [mine - theirs for mine, theirs in zip(latencies[setting], default, strict=True)],
        )
        for setting in chosen
    ]


def _median_ms(answer: Callable[[np.ndarray], list[str]], queries: np.ndarray) -> float:
    answer(queries[0])  # warm the SQLite connection of this thread and the file mapping
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
    reference = measured[0].quality if measured[0].settings.rescore == "off" else None
    payload = {
        "documents": sizes[0],
        "queries": sizes[1],
        "metric": metric,
        "rounds": rounds,
        "load_average": load,
        "rows": [
            {
                "label": m.label,
                **asdict(m.settings),
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
