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
import heapq
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
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
    _check_top_k(top_k)
    fetch = top_k if raw_lookup is None else _within(_fetch(top_k, candidates), top_k, index)
    scores, ids = _proposed(kernel, index, raw_queries, fetch, allowed, index_lock)
    if raw_lookup is None:
        return scores, ids, index.score_kind
    if narrow is not None:
        ids = narrow(raw_queries, ids)
    project = _projection(space, rescorer)
    exact, rows, _ = _rescore(raw_queries, ids, top_k, raw_lookup, project, _best(top_k))
    return exact, rows, SCORE_KINDS[space]


@dataclass(frozen=True)
class Records:
    """A shard's share of a search over shards (`index.shards.merge`): what one index over every
    shard would have re-scored is the best `fetch` candidates by index score across shards, so
    each shard gives the index scores of all it proposed (`proposed`, per query, best first)
    and, re-scored, each candidate that is among the top k of the candidates proposed up to it
    (`scores`, `rows` and their index scores `proposed_of`, per query, −1 padded rows): the
    merged top k among any prefix of its candidates is among those."""

    proposed: list[np.ndarray]
    scores: np.ndarray
    rows: np.ndarray
    proposed_of: np.ndarray
    fetch: int
    kind: str


def propose(
    kernel: WhiteningKernel,
    index: VectorIndex,
    raw_queries: np.ndarray,
    top_k: int,
    *,
    raw_lookup: RawLookup,
    allowed: np.ndarray | None = None,
    space: str = "raw",
    rescorer: WhiteningKernel | None = None,
    candidates: int | None = None,
    index_lock: AbstractContextManager | None = None,
) -> Records:
    """`search` with re-scoring and no narrowing, as one shard of several answers it."""
    _check_top_k(top_k)
    fetch = _fetch(top_k, candidates)
    within = _within(fetch, top_k, index)
    scores, ids = _proposed(kernel, index, raw_queries, within, allowed, index_lock)
    project = _projection(space, rescorer)
    exact, rows, at = _rescore(raw_queries, ids, ids.shape[1], raw_lookup, project, _records(top_k))
    proposed_of = np.take_along_axis(scores, np.maximum(at, 0), axis=1)
    return Records(
        [query_scores[query_ids >= 0] for query_scores, query_ids in zip(scores, ids, strict=True)],
        exact,
        rows,
        proposed_of,
        fetch,
        SCORE_KINDS[space],
    )


def _check_top_k(top_k: int) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InvalidInput(f"top_k must be a positive integer, got {top_k!r}")


def _fetch(top_k: int, candidates: int | None) -> int:
    """Candidates to propose per query for re-scoring: `candidates`, None: a few per result."""
    fetch = default_candidates(top_k) if candidates is None else candidates
    if isinstance(fetch, bool) or not isinstance(fetch, int) or fetch < top_k:
        raise InvalidInput(f"candidates must be an integer ≥ top_k ({top_k}), got {fetch!r}")
    return fetch


def _within(fetch: int, top_k: int, index: VectorIndex) -> int:
    """At most what `index` holds: more find nothing more, and FAISS allocates every one asked."""
    return min(fetch, max(index.ntotal, top_k))


def _proposed(
    kernel: WhiteningKernel,
    index: VectorIndex,
    raw_queries: np.ndarray,
    fetch: int,
    allowed: np.ndarray | None,
    index_lock: AbstractContextManager | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The index's scores and ids of its best `fetch` per query."""
    queries = kernel.transform(raw_queries)
    with index_lock or nullcontext():
        return index.search(queries, fetch, allowed)


def _projection(space: str, rescorer: WhiteningKernel | None) -> Callable[[np.ndarray], np.ndarray]:
    """What raw vectors go through before their exact cosines in `space`."""
    if space == "kernel":
        if rescorer is None:
            raise InvalidInput("kernel-space re-scoring needs the kernel to re-score with")
        return _float32 if _is_rotation(rescorer) else rescorer.transform
    if space == "raw":
        return _float32
    raise InvalidInput(f"re-scoring space must be 'raw' or 'kernel', got {space!r}")


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


Keep = Callable[[np.ndarray], np.ndarray]
"""A query's exact scores, in candidate order -> the positions kept, in the order returned."""


def _best(top_k: int) -> Keep:
    """The best `top_k` by exact score (ties: the candidate proposed first)."""
    return lambda exact: np.argsort(-exact, kind="stable")[:top_k]


def _records(top_k: int) -> Keep:
    """Every candidate among the best `top_k` of those proposed up to it (ties: the one
    proposed first), best first: whatever prefix of the candidates a merge keeps, its best
    `top_k` are among these."""

    def keep(exact: np.ndarray) -> np.ndarray:
        best: list[float] = []
        kept = []
        for position, score in enumerate(exact.tolist()):
            if len(best) < top_k:
                heapq.heappush(best, score)
            elif score > best[0]:
                heapq.heapreplace(best, score)
            else:
                continue
            kept.append(position)
        positions = np.asarray(kept, np.int64)
        return positions[np.argsort(-exact[positions], kind="stable")]

    return keep


def _rescore(
    raw_queries: np.ndarray,
    candidates: np.ndarray,
    width: int,
    raw_lookup: RawLookup,
    project: Callable[[np.ndarray], np.ndarray],
    keep: Keep,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact scores, rows and positions among each query's `candidates` (n, width; −1 pads) of
    the candidates `keep` picks."""
    rows, vectors = raw_lookup(np.unique(candidates[candidates >= 0]))
    out_scores = np.zeros((len(raw_queries), width), np.float32)
    out_ids = np.full((len(raw_queries), width), -1, np.int64)
    out_at = np.full((len(raw_queries), width), -1, np.int64)
    if not len(rows):
        return out_scores, out_ids, out_at
    # Candidates are divided by their lengths after the product, not scaled to unit length
    # first: that copy of every one cost 1 ms for 3,200 of them, ten times the product.
    vectors, queries = project(vectors), unit_rows(project(raw_queries))
    norms = _norms(vectors)
    at = np.minimum(np.searchsorted(rows, candidates), len(rows) - 1)
    known = rows[at] == candidates  # the −1 pads, and rows the lookup did not find, drop out
    for q, query in enumerate(queries):
        found = at[q][known[q]]
        exact = (vectors[found] @ query) / norms[found]
        order = keep(exact)
        out_scores[q, : len(order)] = exact[order]
        out_ids[q, : len(order)] = rows[found[order]]
        out_at[q, : len(order)] = np.flatnonzero(known[q])[order]
    return out_scores, out_ids, out_at
