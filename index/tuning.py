"""Grid search over the kernel's beta, gamma and k on labelled data, from one set of statistics.

The kernel's statistics (n, Σx, Σxᵀx) are fitted once, on the corpus; the labelled pairs or queries
only score the candidates. Per beta there is one eigendecomposition, per (beta, gamma) one transform
at the largest k, and each smaller k is a slice of it, re-normalised. `index.tuning_served` then
scores what the server would serve; the grid's defaults and checks are `index.tuning_grid`'s.
"""

import copy
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from index import tuning_grid
from index.errors import InvalidInput
from index.kernel import WhiteningKernel
from index.metrics import ndcg_at_k, spearman
from index.tuning_grid import DEFAULT_BETAS, DEFAULT_GAMMAS
from index.tuning_results import TuningPoint, TuningResult
from index.validation import as_matrix, unit_rows


def tune_pairs(
    kernel: WhiteningKernel,
    a: Any,
    b: Any,
    scores: Any,
    *,
    betas: Iterable[float] = DEFAULT_BETAS,
    gammas: Iterable[float] = DEFAULT_GAMMAS,
    ks: Iterable[int] | None = None,
    max_k: int | None = None,
) -> TuningResult:
    """Score each (beta, gamma, k) by the Spearman correlation of pair cosines with gold scores.

    Args:
        kernel: a fitted kernel whose statistics come from the corpus; it is copied, not changed.
        a, b: raw vectors (n, d) of the first and second sentence of each labelled pair.
        scores: gold similarity of each pair (n,).
        betas, gammas: the values to try.
        ks: output dimensions to try (default `default_ks(d, max_k)`); any above max_k is dropped.
        max_k: the largest k allowed (default d).

    Returns:
        A TuningResult with metric "spearman"; best is the highest score, ties to the smaller k.
    """
    d = tuning_grid.fitted_dimension(kernel)
    A = as_matrix(a, d, "a")
    B = as_matrix(b, d, "b")
    gold = np.asarray(scores, dtype=np.float64)
    if gold.ndim != 1 or not (A.shape[0] == B.shape[0] == gold.shape[0]):
        raise InvalidInput(
            f"a, b and scores must describe the same pairs, got {A.shape[0]} rows in a, "
            f"{B.shape[0]} in b and scores of shape {gold.shape}"
        )
    if gold.shape[0] < 2:
        raise InvalidInput(f"tuning on pairs needs at least 2 pairs, got {gold.shape[0]}")
    if not np.isfinite(gold).all() or np.ptp(gold) == 0:
        raise InvalidInput("scores must be finite and not all equal, or no ranking can be scored")
    n = gold.shape[0]

    def score(Y: np.ndarray) -> float:
        return pair_spearman(Y[:n], Y[n:], gold)

    return _sweep(kernel, np.vstack([A, B]), score, "spearman", betas, gammas, ks, max_k)


def tune_retrieval(
    kernel: WhiteningKernel,
    doc_vectors: Any,
    doc_ids: Sequence[Hashable],
    query_vectors: Any,
    relevant: Sequence[Mapping[Hashable, float]],
    *,
    betas: Iterable[float] = DEFAULT_BETAS,
    gammas: Iterable[float] = DEFAULT_GAMMAS,
    ks: Iterable[int] | None = None,
    max_k: int | None = None,
    k_eval: int = 10,
) -> TuningResult:
    """Score each (beta, gamma, k) by nDCG@k_eval of exact cosine search over the documents.

    Args:
        kernel: a fitted kernel whose statistics come from the corpus; it is copied, not changed.
        doc_vectors: raw vectors (n_docs, d) of the documents searched.
        doc_ids: the id of each document, in the same order.
        query_vectors: raw vectors (n_queries, d) of the labelled queries.
        relevant: one mapping doc_id -> graded relevance (> 0 relevant) per query.
        betas, gammas, ks, max_k: the grid, as in `tune_pairs`.
        k_eval: the nDCG cut-off (and the number of documents retrieved per query).

    Returns:
        A TuningResult with metric "ndcg@{k_eval}"; best as in `tune_pairs`.
    """
    d = tuning_grid.fitted_dimension(kernel)
    D = as_matrix(doc_vectors, d, "doc_vectors")
    Q = as_matrix(query_vectors, d, "query_vectors")
    ids = list(doc_ids)
    if len(ids) != D.shape[0]:
        raise InvalidInput(
            f"doc_ids has {len(ids)} ids for {D.shape[0]} doc_vectors: pass one id per document"
        )
    if len(set(ids)) != len(ids):
        raise InvalidInput("doc_ids has duplicates: each document needs its own id")
    if D.shape[0] == 0 or Q.shape[0] == 0:
        raise InvalidInput("tuning for retrieval needs at least one document and one query")
    relevant = list(relevant)
    if len(relevant) != Q.shape[0]:
        raise InvalidInput(
            f"relevant has {len(relevant)} judgment mappings for {Q.shape[0]} queries: "
            "pass one mapping per query, in the same order"
        )
    top = tuning_grid.positive_int(k_eval, "k_eval")
    ndcg_at_k([[]] * len(relevant), relevant, top)  # raises on malformed judgments, before any work
    n_docs = D.shape[0]
    id_array = np.empty(n_docs, dtype=object)
    id_array[:] = ids

    def score(Y: np.ndarray) -> float:
        rankings = [id_array[row].tolist() for row in exact_top_k(Y[n_docs:], Y[:n_docs], top)]
        return ndcg_at_k(rankings, relevant, top)

    metric = f"ndcg@{top}"
    return _sweep(kernel, np.vstack([D, Q]), score, metric, betas, gammas, ks, max_k)


def _sweep(
    kernel: WhiteningKernel,
    X: np.ndarray,
    score: Callable[[np.ndarray], float],
    metric: str,
    betas: Iterable[float],
    gammas: Iterable[float],
    ks: Iterable[int] | None,
    max_k: int | None,
) -> TuningResult:
    """Transform X once per (beta, gamma) at the largest usable k and score every k by slicing."""
    d = kernel.n_features_in_
    beta_grid = tuning_grid.real_grid(betas, "betas")
    gamma_grid = tuning_grid.real_grid(gammas, "gammas")
    k_grid = tuning_grid.k_grid(ks, d, max_k)
    work = copy.deepcopy(kernel)  # refit caches eigh per beta on the copy, never on the caller's
    points: list[TuningPoint] = []
    skipped: list[tuple[float, float, int]] = []
    for beta in beta_grid:
        rank = work.refit(beta=beta, gamma=0.0, k=k_grid[-1]).rank_
        for gamma in gamma_grid:
            usable = [k for k in k_grid if gamma == 0 or k <= rank]
            skipped += [(beta, gamma, k) for k in k_grid if k not in usable]
            if not usable:
                continue
            Y = work.refit(beta=beta, gamma=gamma, k=usable[-1]).transform(X)
            for k in usable:
                Yk = Y if k == Y.shape[1] else unit_rows(Y[:, :k])
                points.append(TuningPoint(beta, gamma, k, score(Yk)))
    if not points:
        raise InvalidInput(
            f"every grid point has k above the {rank} meaningful components and gamma > 0: "
            "add smaller ks or gamma=0"
        )
    best = max(points, key=lambda p: (p.score, -p.k))
    return TuningResult(metric=metric, points=points, best=best, skipped=skipped)


def exact_top_k(
    queries: np.ndarray, docs: np.ndarray, k: int, block: int = 1024
) -> Iterator[np.ndarray]:
    """Row indices of each query's k most similar documents, best first (exact inner product)."""
    k = min(k, docs.shape[0])
    for start in range(0, queries.shape[0], block):
        sims = queries[start : start + block] @ docs.T
        if k < sims.shape[1]:
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
        yield from np.take_along_axis(part, order, axis=1)


def pair_spearman(A: np.ndarray, B: np.ndarray, gold: Any) -> float:
    """Spearman correlation of each pair's cosine (rows of unit vectors A, B) with gold scores."""
    return spearman(np.einsum("ij,ij->i", A, B, dtype=np.float64), np.asarray(gold, np.float64))
