"""Evaluation metrics: numpy in, float in [0, 1] (or [-1, 1] for correlations) out.

Correlations score a similarity against gold pair scores (STS-B); nDCG, recall and MRR score ranked
retrieval against graded judgments (BEIR). Callers multiply by 100 for the usual tables.
"""

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from index.errors import InvalidInput

Ranking = Sequence[Hashable]
Judgments = Mapping[Hashable, float]


# ---- correlations -----------------------------------------------------------------------------


def pearson(a: Any, b: Any) -> float:
    """Pearson correlation of two equal-length 1-D arrays: does b grow linearly with a?"""
    x, y = _paired(a, b)
    return _pearson(x, y)


def spearman(a: Any, b: Any) -> float:
    """Spearman correlation (Pearson of average ranks, so ties share a rank): the STS-B metric."""
    x, y = _paired(a, b)
    return _pearson(rankdata(x), rankdata(y))


def rankdata(x: Any) -> np.ndarray:
    """1-based ranks of a 1-D array; tied values get the average of the ranks they span."""
    values = np.asarray(x, dtype=np.float64).ravel()
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # the rank of the last member of each group of equal values
    return (last - (counts - 1) / 2.0)[inverse]


def _paired(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    x = _vector(a, "a")
    y = _vector(b, "b")
    if x.shape != y.shape:
        raise InvalidInput(
            f"a and b must have the same length, got {x.shape[0]} and {y.shape[0]}: "
            "pass one value per pair in each"
        )
    if x.shape[0] < 2:
        raise InvalidInput(f"a correlation needs at least 2 pairs, got {x.shape[0]}")
    return x, y


def _vector(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be a 1-D sequence of numbers: {exc}") from exc
    if array.ndim != 1:
        raise InvalidInput(f"{name} must be 1-D, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InvalidInput(f"{name} has NaN or infinite values; drop those pairs")
    return array


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    dx = x - x.mean()
    dy = y - y.mean()
    sx = float(np.sqrt(dx @ dx))
    sy = float(np.sqrt(dy @ dy))
    if sx == 0 or sy == 0:
        which = "a" if sx == 0 else "b"
        raise InvalidInput(
            f"{which} is constant, so its correlation is undefined: pass values that vary"
        )
    return float(np.clip((dx @ dy) / (sx * sy), -1.0, 1.0))


# ---- ranked retrieval -------------------------------------------------------------------------


def ndcg_at_k(retrieved: Sequence[Ranking], relevant: Sequence[Judgments], k: int = 10) -> float:
    """Mean nDCG@k as BEIR/pytrec_eval compute it: gain rel, discount log2(rank+1), cut at k."""
    k = _check_cutoff(k)
    total = 0.0
    for ranking, judged in _queries(retrieved, relevant):
        gains = np.array([max(float(judged.get(doc, 0.0)), 0.0) for doc in ranking[:k]])
        dcg = float(gains @ _discounts(gains.shape[0]))
        ideal = np.sort(np.array([float(r) for r in judged.values() if r > 0]))[::-1][:k]
        total += dcg / float(ideal @ _discounts(ideal.shape[0]))
    return total / len(retrieved)


def recall_at_k(retrieved: Sequence[Ranking], relevant: Sequence[Judgments], k: int = 100) -> float:
    """Mean share of each query's relevant documents in its top k: what re-ranking can reach."""
    k = _check_cutoff(k)
    total = 0.0
    for ranking, judged in _queries(retrieved, relevant):
        wanted = {doc for doc, rel in judged.items() if rel > 0}
        total += len(wanted.intersection(ranking[:k])) / len(wanted)
    return total / len(retrieved)


def mrr(retrieved: Sequence[Ranking], relevant: Sequence[Judgments], k: int | None = None) -> float:
    """Mean reciprocal rank of the first relevant document (within the top k if given, else 0)."""
    cutoff = None if k is None else _check_cutoff(k)
    total = 0.0
    for ranking, judged in _queries(retrieved, relevant):
        for rank, doc in enumerate(ranking[:cutoff], start=1):
            if judged.get(doc, 0) > 0:
                total += 1.0 / rank
                break
    return total / len(retrieved)


def _discounts(n: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def _check_cutoff(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InvalidInput(f"k must be a positive integer, got {k!r}")
    return int(k)


def _queries(
    retrieved: Sequence[Ranking], relevant: Sequence[Judgments]
) -> list[tuple[list[Hashable], Judgments]]:
    """Pair each query's ranking (duplicates dropped, first kept) with its judgments, checked."""
    if isinstance(retrieved, str | bytes) or isinstance(relevant, Mapping):
        raise InvalidInput(
            "retrieved must be a list of rankings and relevant a list of mappings, one per query"
        )
    if len(retrieved) != len(relevant):
        raise InvalidInput(
            f"retrieved has {len(retrieved)} queries but relevant has {len(relevant)}: "
            "pass one ranking and one judgment mapping per query, in the same order"
        )
    if len(retrieved) == 0:
        raise InvalidInput("no queries given: pass at least one ranking with its judgments")
    pairs = []
    for position, (ranking, judged) in enumerate(zip(retrieved, relevant, strict=True)):
        if not isinstance(judged, Mapping):
            raise InvalidInput(
                f"relevant[{position}] is {type(judged).__name__}, "
                "not a mapping doc_id -> relevance"
            )
        if not any(rel > 0 for rel in judged.values()):
            raise InvalidInput(
                f"query {position} has no relevant document (relevance > 0): "
                "evaluate only the queries that have judgments"
            )
        pairs.append((list(dict.fromkeys(ranking)), judged))
    return pairs
