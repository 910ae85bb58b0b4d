"""What the peers benchmark hands every system and gets back: a corpus, and one measured row.

Every system, ours and the peers, gets the same documents, queries, model and chunk size from
a Bench, and each pass comes back as Results scored by the same `index.metrics` code.
"""

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import data, report
from index.encoder import bundled_model_path
from index.metrics import ndcg_at_k, recall_at_k
from service.config import ServerSettings

CHUNK: int = ServerSettings.model_fields["ingest_chunk"].default
"""Documents per ingest chunk for every system: the service's default."""
TOP_K = 10
WARMUP = 3
"""Untimed queries before each timed pass: first calls pay for lazy loading."""
SMOKE_DOCS = 150
SMOKE_QUERIES = 20


@dataclass(frozen=True)
class SharedEncoder:
    """`--encoder shared`: every system encodes with sentence-transformers on torch, the same way.

    The peers through bench/drivers/sentence_encoder.py (with this batch and these threads),
    ours through its `torch` backend (the same `SentenceTransformer.encode`) with query batching
    off, since the peers encode each query alone. The index side gets one thread everywhere, as
    ours pins its own: OpenMP (FAISS, torch's default) and BLAS pools by environment, the
    encoder's torch threads set explicitly to the cores.
    """

    threads: int = os.cpu_count() or 1
    batch: int = 32
    pools: tuple[tuple[str, str], ...] = (
        ("OMP_NUM_THREADS", "1"),
        ("OPENBLAS_NUM_THREADS", "1"),
        ("MKL_NUM_THREADS", "1"),
    )

    def server_settings(self) -> dict[str, Any]:
        """Ours on this encoder: WHITENED_SEARCH_* settings by name."""
        return {"backend": "torch", "batch_size": self.batch, "threads": self.threads,
                "query_batch_ms": 0}  # fmt: skip

    def job(self) -> dict[str, Any]:
        """What a driver's job carries for it (bench/drivers/sentence_encoder.Encoder.from_job)."""
        return {"encoder": "shared", "encoder_threads": self.threads, "encoder_batch": self.batch}

    def describe(self) -> str:
        pools = ", ".join(f"{name}={value}" for name, value in self.pools)
        return (
            f"every system encodes with sentence-transformers on torch (CPU, {self.threads} "
            f"threads), batch {self.batch}, the model's max_seq_length, normalized vectors "
            f"(ours: its torch backend, query batching off); index-side pools {pools}"
        )


SHARED = SharedEncoder()


CORPORA = ("scifact", "reuters")
REUTERS_DOCS = 20_000
"""Reuters sentences by default: 4× txtai's switch to IVF at 5,000 (SciFact's 5,183 sits on it)."""
REUTERS_QUERIES = 300


@dataclass
class Bench:
    """The corpus as every system sees it: documents, queries, and what a ranking is scored
    against: SciFact's judgments of its test queries (nDCG@10), or for Reuters sentences, which
    have none, the exact top 10 of the model's own vectors (recall@10 against exact search)."""

    corpus: str
    doc_ids: list[str]
    documents: list[str]
    queries: list[str]
    judgments: list[dict[str, int]]
    smoke: bool
    model: str
    model_name: str
    shared_encoder: bool = False
    """`--encoder shared` (SHARED) rather than each system's own."""
    subset: bool = False
    """`--docs` took part of SciFact: its results are named apart from the whole corpus's."""

    @classmethod
    def load(cls, root: Path, args: argparse.Namespace) -> "Bench":
        docs = SMOKE_DOCS if args.smoke and args.docs is None else args.docs
        queries = SMOKE_QUERIES if args.smoke and args.queries is None else args.queries
        model = str(args.model or bundled_model_path())
        if args.corpus == "reuters":
            doc_ids, documents, texts = _reuters(root, docs or REUTERS_DOCS, queries)
            judgments = _exact_top(model, documents, doc_ids, texts)
        else:
            beir = data.load_scifact(root, limit_docs=docs)
            rows, judgments = beir.judged("test")
            rows, judgments = rows[:queries], judgments[:queries]
            doc_ids, documents = beir.doc_ids, beir.documents
            texts = [beir.queries[i] for i in rows]
        return cls(
            corpus=args.corpus,
            doc_ids=doc_ids,
            documents=documents,
            queries=texts,
            judgments=judgments,
            smoke=args.smoke,
            model=model,
            model_name=args.model or "all-MiniLM-L6-v2 (bundled)",
            shared_encoder=args.encoder == "shared",
            subset=args.corpus == "scifact" and args.docs is not None,
        )

    def identity(self) -> dict[str, Any]:
        """What makes two runs' passes comparable (bench.peers_passes.Passes.identity, less the
        run's own repeats and chunk)."""
        return {
            "smoke": self.smoke,
            "corpus": self.corpus,
            "documents": len(self.doc_ids),
            "queries": len(self.queries),
            "model": self.model_name,
            "shared_encoder": self.shared_encoder,
        }

    @property
    def deadline_seconds(self) -> float:
        """How long one system's ingest or driver may run before it counts as hung: an hour, or
        more for a large corpus (5 documents/s: Chroma's own function took over an hour on
        100,000 Reuters sentences on one host, and a flat hour failed its pass)."""
        return max(3600.0, len(self.doc_ids) / 5)

    @property
    def labelled(self) -> bool:
        """Judged by people (SciFact), rather than by exact search (Reuters)."""
        return self.corpus == "scifact"

    def describe(self) -> str:
        """The corpus and the queries, as the table's header says them."""
        if self.labelled:
            return scifact_description(len(self.doc_ids), len(self.queries))
        return (
            f"the first {len(self.doc_ids):,} distinct Reuters sentences, the next "
            f"{len(self.queries)} distinct ones as queries, scored by recall@10 against the exact "
            "top 10 of the model's vectors (sentence-transformers on torch, cosine)"
        )

    def write_documents(self, path: Path, count: int | None = None) -> Path:
        """The documents (the first `count` of them) as jsonl (id, text), the form the peers'
        drivers ingest."""
        with path.open("w", encoding="utf-8") as handle:
            for doc_id, text in zip(self.doc_ids[:count], self.documents[:count], strict=True):
                handle.write(json.dumps({"id": doc_id, "text": text}) + "\n")
        return path


def scifact_description(documents: int, queries: int) -> str:
    return f"{documents:,} SciFact documents (title + text), {queries} judged test queries"


def _reuters(root: Path, docs: int, queries: int | None) -> tuple[list[str], list[str], list[str]]:
    """The first `docs` distinct sentences (ids r0, r1, ...) and the next distinct ones as
    queries: no query is also a document, and no two documents tie."""
    distinct = list(dict.fromkeys(data.load_reuters_sentences(root)))
    wanted = queries or REUTERS_QUERIES
    if len(distinct) < docs + wanted:
        raise SystemExit(
            f"bench peers: {len(distinct):,} distinct Reuters sentences, fewer than {docs:,} "
            f"documents and {wanted} queries: ask for fewer with --docs"
        )
    documents = distinct[:docs]
    return [f"r{i}" for i in range(docs)], documents, distinct[docs : docs + wanted]


def _exact_top(
    model: str, documents: list[str], doc_ids: list[str], queries: list[str]
) -> list[dict[str, int]]:
    """Each query's exact top 10 by cosine of the model's own vectors (torch; cached)."""
    from bench.cache import EmbeddingCache
    from index.encoder import Encoder
    from index.validation import unit_rows

    encoder = Encoder(None if model == str(bundled_model_path()) else model, backend="torch")
    cache = EmbeddingCache()
    corpus = unit_rows(cache.encode(encoder, documents, "peers corpus"))
    asked = unit_rows(cache.encode(encoder, queries, "peers queries"))
    top = np.argsort(-(asked @ corpus.T), axis=1)[:, :TOP_K]
    return [{doc_ids[int(i)]: 1 for i in row} for row in top]


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
    http: bool = False
    """Asked over HTTP (a server), rather than as a library in process."""
    ndcg: float | None = None
    recall: float | None = None
    """recall@10 against exact search (Reuters, no judgments)."""
    notes: dict[str, Any] = field(default_factory=dict)
    repetition: int = 0
    run: str = ""
    load_average_start: tuple[float, float, float] | None = None
    pass_seconds: float | None = None
    """Wall seconds of the whole pass this row belongs to (start-up, ingest, every setting's
    queries): what the run's length is made of."""

    def figures(self) -> dict[str, Any]:
        """The row of peers.json: the raw timings summarised, the notes merged in."""
        ms = 1000 * np.asarray(self.seconds)
        return {
            "system": self.system,
            "setting": self.setting,
            "repetition": self.repetition,
            "run": self.run,
            "http": self.http,
            "load_average_start": self.load_average_start,
            "pass_seconds": self.pass_seconds,
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
            "recall_at_10_exact": self.recall,
            **self.notes,
        }


def score(bench: Bench, result: Result) -> Result:
    """The result with its nDCG@10 against SciFact's judgments, or its recall@10 against the
    exact top 10 of Reuters queries."""
    if bench.labelled:
        result.ndcg = ndcg_at_k(result.rankings, bench.judgments, TOP_K)
    else:
        result.recall = recall_at_k(result.rankings, bench.judgments, TOP_K)
    return result
