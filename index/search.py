"""A collection's search: filter → index → re-score → documents, against one fitted pair.

Apart from `collection.py` (writes, recovery, the fit policy) because a search only reads: it
takes the kernel and index that were serving when it started (`Fitted`, replaced as a whole by
a refit, never edited apart) and the document store, and never waits for a writer.
"""

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from index import rescoring
from index.documents import DocumentStore
from index.errors import InvalidInput
from index.kernel import WhiteningKernel
from index.shortlist import Shortlist
from index.snapshots import Settings
from index.validation import as_matrix
from index.vector_index import VectorIndex


@dataclass(frozen=True)
class Hit:
    """A search result; `score_kind` says what `score` is (see VectorIndex and rescoring)."""

    id: str
    score: float
    text: str
    metadata: dict[str, Any]
    score_kind: str = "cosine"


@dataclass(frozen=True)
class Answer:
    """Hits per query, and `fitted_at` of the one kernel (with its index) that produced them."""

    hits: list[list[Hit]]
    fitted_at: str | None
    missing_shards: tuple[int, ...] = ()
    """Shards of a sharded collection that did not answer: the hits lack their documents."""


@dataclass(frozen=True)
class Fitted:
    """The kernel and index that answer queries (with the kernel's shortlist codes, if the
    settings keep them); replaced as a pair, never edited apart."""

    kernel: WhiteningKernel
    index: VectorIndex
    rescorer: WhiteningKernel
    """The kernel at the settings' rescore_k: kernel-space re-scoring compares through it."""
    fitted_at: str | None = None  # the manifest's, when the kernel was fitted: its identity
    shortlist: Shortlist | None = None

    @classmethod
    def of(
        cls,
        kernel: WhiteningKernel,
        index: VectorIndex,
        settings: Settings,
        at: str | None,
        shortlist: Shortlist | None = None,
    ) -> "Fitted":
        rescorer = rescoring.rescoring_kernel(kernel, settings.rescore_k)
        return cls(kernel, index, rescorer, at, shortlist)


def answer(
    fitted: Fitted,
    store: DocumentStore,
    settings: Settings,
    vectors: Any,
    top_k: int,
    where: Mapping[str, Any] | None,
    overrides: Mapping[str, Any],
    index_lock: AbstractContextManager,
) -> Answer:
    """The `top_k` documents nearest each raw query vector under the collection's `settings`,
    with a query's `overrides` (rescore, rescore_k, candidates, shortlist) applied; `where`
    filters by metadata before the index is searched."""
    raw = as_matrix(vectors, store.dimension, "vectors")
    chosen = settings.search(**overrides)
    rescorer = (
        fitted.rescorer
        if chosen.rescore_k == settings.rescore_k
        else rescoring.rescoring_kernel(fitted.kernel, chosen.rescore_k)
    )
    candidates = (
        chosen.candidates
        if overrides.get("candidates") is not None
        else rescoring.floor_candidates(chosen.candidates, top_k)
    )
    scores, rows, kind = rescoring.search(
        fitted.kernel,
        fitted.index,
        raw,
        top_k,
        allowed=None if where is None else store.matching(where),
        raw_lookup=None if chosen.rescore == "off" else store.vectors,
        space=chosen.rescore,
        rescorer=rescorer,
        candidates=candidates,
        narrow=_narrow(fitted, chosen, top_k, overrides.get("shortlist") is not None),
        index_lock=index_lock,
    )
    return Answer(_hits(store, scores, rows, kind), fitted.fitted_at)


def _narrow(fitted: Fitted, settings: Settings, top_k: int, asked: bool) -> rescoring.Narrow | None:
    """The shortlist's cut of the candidates to `settings.shortlist` (at least top_k), if the
    fitted kernel has one; a query that `asked` for one of a collection without codes is told
    how to get them."""
    if settings.shortlist is None:
        return None
    if fitted.shortlist is None:
        if asked:
            raise InvalidInput(
                "this collection keeps no shortlist codes: refit it with a shortlist (for "
                "example shortlist=100) before a query asks for one"
            )
        return None
    return partial(fitted.shortlist.narrow, keep=max(settings.shortlist, top_k))


def _hits(store: DocumentStore, scores: np.ndarray, rows: np.ndarray, kind: str) -> list[list[Hit]]:
    """The stored documents of `rows` (−1 pads, and rows deleted since the search, left out)."""
    documents = store.by_rows(rows[rows >= 0].tolist())
    return [
        [
            Hit(doc.id, float(score), doc.text, doc.metadata, kind)
            for score, row in zip(query_scores, query_rows, strict=True)
            if (doc := documents.get(int(row))) is not None
        ]
        for query_scores, query_rows in zip(scores, rows, strict=True)
    ]
