"""Two-stage search: a compressed index proposes candidates, the full raw vectors order them.

Truncating to k dimensions and quantising keep the right documents among the first few dozen
(Recall@100 barely moves) but shuffle their order; exact cosines of the raw d-dim vectors, which
a collection stores anyway, give the order back for a few dozen vector reads per query.
"""

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import numpy as np

from index.errors import InvalidInput
from index.kernel import WhiteningKernel
from index.validation import unit_rows
from index.vector_index import VectorIndex

CANDIDATES_PER_RESULT = 4
"""Default candidates for re-scoring: this many per requested result (at least MIN_CANDIDATES)."""

MIN_CANDIDATES = 40

RawLookup = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""rows -> (rows found, their raw vectors): rows deleted meanwhile may be missing."""


def default_candidates(top_k: int) -> int:
    return max(CANDIDATES_PER_RESULT * top_k, MIN_CANDIDATES)


def search(
    kernel: WhiteningKernel,
    index: VectorIndex,
    raw_queries: np.ndarray,
    top_k: int,
    *,
    allowed: np.ndarray | None = None,
    raw_lookup: RawLookup | None = None,
    candidates: int | None = None,
    index_lock: AbstractContextManager | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Scores, ids (n, top_k; −1 pads) and what the scores are.

    Without `raw_lookup` the index's own scores come back (`index.score_kind`). With it, the
    index proposes `candidates` per query and they are re-ranked by the cosine of their raw
    vectors with the raw query ("raw_cosine").
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InvalidInput(f"top_k must be a positive integer, got {top_k!r}")
    queries = kernel.transform(raw_queries)
    fetch = top_k
    if raw_lookup is not None:
        fetch = default_candidates(top_k) if candidates is None else candidates
        if isinstance(fetch, bool) or not isinstance(fetch, int) or fetch < top_k:
            raise InvalidInput(f"candidates must be an integer ≥ top_k ({top_k}), got {fetch!r}")
    lock: AbstractContextManager = index_lock or nullcontext()
    with lock:
        scores, ids = index.search(queries, fetch, allowed)
    if raw_lookup is None:
        return scores, ids, index.score_kind
    return (*_rescore(raw_queries, ids, top_k, raw_lookup), "raw_cosine")


def _rescore(
    raw_queries: np.ndarray, candidates: np.ndarray, top_k: int, raw_lookup: RawLookup
) -> tuple[np.ndarray, np.ndarray]:
    rows, vectors = raw_lookup(np.unique(candidates[candidates >= 0]))
    position = {int(row): i for i, row in enumerate(rows)}
    vectors = unit_rows(vectors)
    queries = unit_rows(np.asarray(raw_queries, dtype=np.float32))
    out_scores = np.zeros((len(queries), top_k), np.float32)
    out_ids = np.full((len(queries), top_k), -1, np.int64)
    for q, proposed in enumerate(candidates):
        found = [int(row) for row in proposed if int(row) in position]
        if not found:
            continue
        exact = vectors[[position[row] for row in found]] @ queries[q]
        order = np.argsort(-exact, kind="stable")[:top_k]
        out_scores[q, : len(order)] = exact[order]
        out_ids[q, : len(order)] = np.asarray(found)[order]
    return out_scores, out_ids
