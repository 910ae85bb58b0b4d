"""Compression report: what each (k, index type, re-scoring) costs in bytes and keeps in quality.

It answers the operator's question "what is the smallest index that keeps my quality?" without
labels: recall@10 against exact search on the uncompressed raw vectors, for queries drawn from
the corpus itself (each query's own document left out) or given ones. With labels it adds the
task metric: nDCG@10 for queries with relevance judgments, Spearman for scored pairs.
"""

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from index import rescoring
from index.errors import InvalidHyperparameters, InvalidInput, NotEnoughData
from index.kernel import WhiteningKernel
from index.metrics import ndcg_at_k, spearman
from index.validation import as_matrix, unit_rows
from index.vector_index import VectorIndex

DEFAULT_KS = (384, 256, 192, 128, 96, 64)
DEFAULT_SPECS = ("Flat", "SQ8", "BFlat")
RECALL_AT = 10
TARGET_RECALL = 0.99
"""Default label-free quality bar of `CompressionReport.smallest`."""
LATENCY_QUERIES = 100


@dataclass(frozen=True)
class CompressionRow:
    k: int
    index_spec: str
    rescore: bool
    bytes_per_vector: float
    recall_at_10: float
    latency_ms: float
    metric: float | None = None


@dataclass(frozen=True)
class CompressionReport:
    rows: list[CompressionRow]
    n_documents: int
    n_queries: int
    metric_name: str | None
    skipped_ks: tuple[int, ...] = ()
    """ks not measured: above the kernel's meaningful components with γ > 0 (`rank`)."""
    rank: int | None = None

    def smallest(self, rescore: bool, target: float = TARGET_RECALL) -> CompressionRow | None:
        """The fewest bytes per vector whose recall@10 against exact raw search is ≥ `target`,
        among rows re-scored as the collection does (`rescore`); None if none reaches it."""
        fit = [r for r in self.rows if r.rescore == rescore and r.recall_at_10 >= target]
        return min(fit, key=lambda r: (r.bytes_per_vector, r.latency_ms), default=None)

    def table(self) -> str:
        """Markdown, one line per setting; fractions shown × 100."""
        metric = f" | {self.metric_name} ×100" if self.metric_name else ""
        lines = [
            f"| k | index | re-score | bytes/vector | recall@10 ×100 | ms/query{metric} |",
            "|---|---|---|---|---|---|" + ("---|" if metric else ""),
        ]
        for row in self.rows:
            value = (
                ""
                if not metric
                else (" | –" if row.metric is None else f" | {100 * row.metric:.2f}")
            )
            lines.append(
                f"| {row.k} | {row.index_spec} | {'on' if row.rescore else 'off'} | "
                f"{row.bytes_per_vector:.0f} | {100 * row.recall_at_10:.1f} | "
                f"{row.latency_ms:.2f}{value} |"
            )
        if self.skipped_ks:
            lines.append(
                f"\nNot measured: k={', '.join(map(str, self.skipped_ks))}, above the "
                f"{self.rank} meaningful components of the kernel (γ > 0 would amplify noise)."
            )
        return "\n".join(lines)


def report(
    kernel: WhiteningKernel,
    rows: np.ndarray,
    raw: np.ndarray,
    *,
    ks: Sequence[int] | None = None,
    specs: Sequence[str] = DEFAULT_SPECS,
    rescore: Sequence[bool] = (False, True),
    queries: np.ndarray | None = None,
    relevant: Sequence[Mapping[int, float]] | None = None,
    pairs: tuple[np.ndarray, np.ndarray, Sequence[float]] | None = None,
    n_queries: int = 200,
    candidates: int | None = None,
    space: str = "kernel",
    rescore_k: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> CompressionReport:
    """Build each (k, spec) index on the corpus and measure it.

    Args:
        kernel: a fitted kernel; its β, γ are kept and k is varied by `refit` (no data pass).
        rows, raw: the corpus: ids and raw vectors (n, d).
        rescore: rows without and with re-scoring; re-scored rows re-score as a collection with
            these settings would: `candidates` per query, in `space` ("kernel" at `rescore_k`
            dimensions, None: every meaningful one, or "raw").
        progress: called with (indexes measured, indexes to measure) after each (k, spec).
        queries: raw query vectors; None samples `n_queries` documents as queries.
        relevant: with `queries`, per query the relevant rows and grades (adds nDCG@10).
        pairs: raw vectors of both sides and gold scores (adds Spearman of the codes' cosines).
    """
    raw = as_matrix(raw, kernel.n_features_in_, "raw")
    rows = np.asarray(rows, np.int64)
    if len(rows) != len(raw) or len(raw) < RECALL_AT + 2:
        raise NotEnoughData(f"a report needs at least {RECALL_AT + 2} documents with ids")
    if relevant is not None and queries is None:
        raise InvalidInput("relevance judgments need the queries they judge")
    order = np.argsort(rows)
    rows, raw = rows[order], raw[order]
    own = None
    if queries is None:
        picked = np.random.default_rng(seed).choice(len(raw), min(n_queries, len(raw)), False)
        queries, own = raw[picked], rows[picked]
    queries = as_matrix(queries, kernel.n_features_in_, "queries")
    truth = _exact(raw, rows, queries, own)

    def lookup(wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return wanted, raw[np.searchsorted(rows, wanted)]

    work = copy.deepcopy(kernel)
    out = []
    skipped = []
    grid = _ks(ks, kernel)
    for step, k in enumerate(grid):
        try:
            work.refit(k=k)
        except InvalidHyperparameters:
            skipped.append(k)  # above the rank with γ > 0: said under the table
            continue
        vectors = work.transform(raw)
        at = None if rescore_k is None else max(rescore_k, k)
        served = _Rescoring(space, rescoring.rescoring_kernel(work, at), candidates)
        for number, spec in enumerate(specs):
            index = VectorIndex.build(k, spec, vectors, rows)
            for on in rescore:
                found = _search(work, index, queries, own, lookup if on else None, served)
                row = CompressionRow(
                    k=k,
                    index_spec=spec,
                    rescore=on,
                    bytes_per_vector=float(index.bytes_per_vector or 0.0),
                    recall_at_10=_recall(found, truth),
                    latency_ms=_latency(work, index, queries, lookup if on else None, served),
                    metric=_metric(found, relevant, pairs, work, index, on),
                )
                out.append(row)
            if progress is not None:
                progress(step * len(specs) + number + 1, len(grid) * len(specs))
    metric_name = "nDCG@10" if relevant is not None else "Spearman" if pairs is not None else None
    return CompressionReport(
        out, len(raw), len(queries), metric_name, tuple(skipped), kernel.rank_ if skipped else None
    )


def _ks(ks: Sequence[int] | None, kernel: WhiteningKernel) -> list[int]:
    d = kernel.n_features_in_
    default = (*DEFAULT_KS, d, kernel.k_)  # the collection's own k is always among them
    chosen = sorted({k for k in (ks or default) if 1 <= k <= d}, reverse=True)
    if not chosen:
        raise InvalidInput(f"no k in {ks} is between 1 and the dimension {d}")
    return chosen


@dataclass(frozen=True)
class _Truth:
    """Exact raw cosines of every query to every document, and each query's 10th best."""

    rows: np.ndarray
    scores: np.ndarray
    tenth: np.ndarray


def _exact(
    raw: np.ndarray, rows: np.ndarray, queries: np.ndarray, own: np.ndarray | None
) -> _Truth:
    scores = unit_rows(queries) @ unit_rows(raw).T
    if own is not None:
        scores[np.arange(len(queries)), np.searchsorted(rows, own)] = -np.inf
    tenth = -np.partition(-scores, RECALL_AT - 1, axis=1)[:, RECALL_AT - 1]
    return _Truth(rows, scores, tenth)


@dataclass(frozen=True)
class _Rescoring:
    """How re-scored rows re-score: the collection's space, rescoring kernel and candidates."""

    space: str
    rescorer: WhiteningKernel
    candidates: int | None

    def search(self, kernel, index, queries, top_k, lookup) -> np.ndarray:
        return rescoring.search(
            kernel,
            index,
            queries,
            top_k,
            raw_lookup=lookup,
            space=self.space,
            rescorer=self.rescorer,
            candidates=rescoring.floor_candidates(self.candidates, top_k),
        )[1]


def _search(kernel, index, queries, own, lookup, served: _Rescoring) -> np.ndarray:
    extra = 0 if own is None else 1
    found = served.search(kernel, index, queries, RECALL_AT + extra, lookup)
    if own is None:
        return found
    return np.array(
        [[r for r in line if r != o][:RECALL_AT] for line, o in zip(found, own, strict=True)]
    )


TIE = 1e-6
"""Cosines this close to the 10th best count as tied with it (float32 rounding)."""


def _recall(found: np.ndarray, truth: _Truth) -> float:
    """Share of the found top 10 that belong in the exact top 10. A document tied with the 10th
    best counts: a corpus with duplicates (Reuters has 5% of them) has many equal cosines, and
    which of them an index returns is arbitrary, not a miss."""
    hits = 0
    for i, line in enumerate(found):
        line = np.unique(line[line >= 0])  # FAISS pads with -1 when it finds fewer
        scores = truth.scores[i, np.searchsorted(truth.rows, line)]
        hits += min(RECALL_AT, int(np.sum(scores >= truth.tenth[i] - TIE)))
    return hits / (RECALL_AT * len(found))


def _latency(kernel, index, queries, lookup, served: _Rescoring) -> float:
    """Median milliseconds of one query: kernel, index search and re-scoring (not encoding)."""
    timings = []
    for q in queries[:LATENCY_QUERIES]:
        started = time.perf_counter()
        served.search(kernel, index, q[None, :], RECALL_AT, lookup)
        timings.append(time.perf_counter() - started)
    return 1000 * float(np.median(timings))


def _metric(found, relevant, pairs, kernel, index, rescored) -> float | None:
    if relevant is not None:
        return ndcg_at_k([list(f) for f in found], relevant, k=10)
    if pairs is not None and not rescored:
        a, b, gold = pairs
        qa, qb = index.quantize(kernel.transform(a)), index.quantize(kernel.transform(b))
        return spearman((qa * qb).sum(axis=1), gold)
    return None
