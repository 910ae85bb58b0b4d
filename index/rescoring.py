"""Two-stage search: a compressed index proposes candidates, full-precision vectors order them.

Truncating to k dimensions and quantising keep the right documents among the first few dozen
(Recall@100 barely moves) but shuffle their order; exact cosines of full-precision vectors,
computed from the raw vectors a collection stores anyway, give the order back for a few dozen
vector reads per query. The space of those cosines is a choice:

- "kernel": the cosine the collection's kernel defines (β, γ) at `rescore_k` dimensions (the
  kernel's own k, or more up to d). This is what a tuned kernel promises: with β=γ=0 and
  rescore_k=d it equals raw cosine exactly (a rotation keeps cosines).
- "raw": the model's own cosine, whatever the kernel.
- "off": the index's scores as they are (cosine of the codes).
"""

import copy
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from index.errors import InvalidInput
from index.kernel import WhiteningKernel
from index.validation import unit_rows
from index.vector_index import VectorIndex

SPACES = ("off", "raw", "kernel")
SCORE_KINDS = {"raw": "raw_cosine", "kernel": "kernel_cosine"}

CANDIDATES_PER_RESULT = 4
"""Default candidates for re-scoring: this many per requested result (at least MIN_CANDIDATES)."""

MIN_CANDIDATES = 40

RawLookup = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""Ascending rows -> (the rows found, still ascending; their raw vectors): a row the lookup
cannot find is left out, and its candidate dropped."""


def default_candidates(top_k: int) -> int:
    return max(CANDIDATES_PER_RESULT * top_k, MIN_CANDIDATES)


def floor_candidates(candidates: int | None, top_k: int) -> int | None:
    """A setting's candidates (a collection's, a tuned pipeline's) for a search of `top_k` hits:
    a floor, never an error; None stays the default. A query's own number is checked instead."""
    return None if candidates is None else max(candidates, top_k)


def check_space(value: Any) -> str:
    """A re-scoring space; true and false (the setting before spaces) mean "raw" and "off"."""
    if isinstance(value, bool):
        return "raw" if value else "off"
    if value not in SPACES:
        raise InvalidInput(f"rescore must be one of {', '.join(SPACES)}, got {value!r}")
    return str(value)


def rescoring_kernel(kernel: WhiteningKernel, rescore_k: int | None) -> WhiteningKernel:
    """The collection's kernel at `rescore_k` dimensions (None: every meaningful one), derived
    from its kept statistics: the full-precision vectors that kernel-space re-scoring compares."""
    if rescore_k is not None and rescore_k < kernel.k_:
        raise InvalidInput(
            f"rescore_k={rescore_k} is below the kernel's k={kernel.k_}: re-scoring compares at "
            "least the dimensions the index holds"
        )
    if rescore_k is None:
        rescore_k = meaningful_k(kernel)
    if rescore_k == kernel.k_:
        return kernel
    return copy.deepcopy(kernel).refit(k=rescore_k)


def meaningful_k(kernel: WhiteningKernel) -> int:
    """Every meaningful component: d for a rotation, the rank with γ > 0."""
    return kernel.n_features_in_ if kernel.gamma == 0 else kernel.rank_


Narrow = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(raw queries, candidate rows (n, m), −1 pads) -> fewer candidate rows per query, −1 pads."""


def search(
    kernel: WhiteningKernel,
    index: VectorIndex,
    raw_queries: np.ndarray,
    top_k: int,
    *,
    allowed: np.ndarray | None = None,
    raw_lookup: RawLookup | None = None,
    space: str = "raw",
    rescorer: WhiteningKernel | None = None,
    candidates: int | None = None,
    narrow: Narrow | None = None,
    index_lock: AbstractContextManager | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Scores, ids (n, top_k; −1 pads) and what the scores are.

    Without `raw_lookup` the index's own scores come back (`index.score_kind`). With it, the
    index proposes `candidates` per query and they are re-ranked by exact cosine in `space`:
    "raw" (the raw vectors: "raw_cosine") or "kernel" (the raw vectors through `rescorer`, see
    `rescoring_kernel`: "kernel_cosine"). `narrow` (a shortlist, `index.shortlist`) may cut
    the candidates down before their raw vectors are read.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InvalidInput(f"top_k must be a positive integer, got {top_k!r}")
    queries = kernel.transform(raw_queries)
    fetch = top_k
    if raw_lookup is not None:
        fetch = default_candidates(top_k) if candidates is None else candidates
        if isinstance(fetch, bool) or not isinstance(fetch, int) or fetch < top_k:
            raise InvalidInput(f"candidates must be an integer ≥ top_k ({top_k}), got {fetch!r}")
        # more candidates than vectors find nothing more, and FAISS allocates every one asked
        fetch = min(fetch, max(index.ntotal, top_k))
    lock: AbstractContextManager = index_lock or nullcontext()
    with lock:
        scores, ids = index.search(queries, fetch, allowed)
    if raw_lookup is None:
        return scores, ids, index.score_kind
    if narrow is not None:
        ids = narrow(raw_queries, ids)
    if space == "kernel":
        if rescorer is None:
            raise InvalidInput("kernel-space re-scoring needs the kernel to re-score with")
        project = _float32 if _is_rotation(rescorer) else rescorer.transform
    elif space == "raw":
        project = _float32
    else:
        raise InvalidInput(f"re-scoring space must be 'raw' or 'kernel', got {space!r}")
    return (*_rescore(raw_queries, ids, top_k, raw_lookup, project), SCORE_KINDS[space])


def _is_rotation(kernel: WhiteningKernel) -> bool:
    """β=γ=0 at every dimension: the kernel rotates, so its cosines are the raw ones, computed
    without the d × d product per candidate (400 candidates: about 120 MFLOP a query)."""
    return kernel.beta == 0 and kernel.gamma == 0 and kernel.k_ == kernel.n_features_in_


def _float32(vectors: np.ndarray) -> np.ndarray:
    return np.asarray(vectors, dtype=np.float32)


def _norms(vectors: np.ndarray) -> np.ndarray:
    """Row lengths, zero rows given 1 (their products are 0, so their cosines are too)."""
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
    norms[norms == 0] = 1
    return norms


def _rescore(
    raw_queries: np.ndarray,
    candidates: np.ndarray,
    top_k: int,
    raw_lookup: RawLookup,
    project: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    rows, vectors = raw_lookup(np.unique(candidates[candidates >= 0]))
    out_scores = np.zeros((len(raw_queries), top_k), np.float32)
    out_ids = np.full((len(raw_queries), top_k), -1, np.int64)
    if not len(rows):
        return out_scores, out_ids
    # Candidates are divided by their lengths after the product, not scaled to unit length
    # first: that copy of every one cost 1 ms for 3,200 of them, ten times the product.
    vectors, queries = project(vectors), unit_rows(project(raw_queries))
    norms = _norms(vectors)
    at = np.minimum(np.searchsorted(rows, candidates), len(rows) - 1)
    known = rows[at] == candidates  # the −1 pads, and rows the lookup did not find, drop out
    for q, query in enumerate(queries):
        found = at[q][known[q]]
        exact = (vectors[found] @ query) / norms[found]
        order = np.argsort(-exact, kind="stable")[:top_k]
        out_scores[q, : len(order)] = exact[order]
        out_ids[q, : len(order)] = rows[found[order]]
    return out_scores, out_ids
