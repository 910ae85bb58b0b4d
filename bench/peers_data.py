"""What the peers benchmark hands every system and gets back: SciFact, and one measured row.

Every system, ours and the peers, gets the same documents, queries, model and chunk size from
a Bench, and each pass comes back as Results scored by the same `index.metrics.ndcg_at_k`.
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
from index.metrics import ndcg_at_k
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


@dataclass
class Bench:
    """SciFact as every system sees it: documents, the judged test queries, train queries."""

    beir: data.Beir
    queries: list[str]
    judgments: list[dict[str, int]]
    smoke: bool
    model: str
    model_name: str
    shared_encoder: bool = False
    """`--encoder shared` (SHARED) rather than each system's own."""
    loads: list[tuple[float, float, float]] = field(default_factory=list)

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
            shared_encoder=args.encoder == "shared",
            loads=[os.getloadavg()],
        )

    def write_documents(self, path: Path) -> Path:
        """The documents as jsonl (id, text), the form the peers' drivers ingest."""
        with path.open("w", encoding="utf-8") as handle:
            for doc_id, text in zip(self.beir.doc_ids, self.beir.documents, strict=True):
                handle.write(json.dumps({"id": doc_id, "text": text}) + "\n")
        return path


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
    repetition: int = 0
    run: str = ""
    load_average_start: tuple[float, float, float] | None = None

    def figures(self) -> dict[str, Any]:
        """The row of peers.json: the raw timings summarised, the notes merged in."""
        ms = 1000 * np.asarray(self.seconds)
        return {
            "system": self.system,
            "setting": self.setting,
            "repetition": self.repetition,
            "run": self.run,
            "load_average_start": self.load_average_start,
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
            **self.notes,
        }


def score(bench: Bench, result: Result) -> Result:
    """The result with its nDCG@10 against the judgments of the queries it answered."""
    result.ndcg = ndcg_at_k(result.rankings, bench.judgments, TOP_K)
    return result
