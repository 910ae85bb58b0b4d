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
    proposed: float | None = None
    """In a shard's proposals (`Proposals`): the index score that proposed it."""


@dataclass(frozen=True)
class Answer:
    """Hits per query, and `fitted_at` of the one kernel (with its index) that produced them."""

    hits: list[list[Hit]]
    fitted_at: str | None
    missing_shards: tuple[int, ...] = ()
    """Shards of a sharded collection that did not answer: the hits lack their documents."""


@dataclass(frozen=True)
class Proposals:
    """A shard's answer, to be merged with the other shards' (`index.shards.merge`): per query,
    the index scores of every candidate it proposed (`proposed`, best first) and the re-scored
    candidates that the merged top k may hold (`rescoring.Records`), each with the index score
    that proposed it; one index over every shard would re-score the best `fetch` candidates.
    `proposed` is None where the hits are final, merged by score alone: no re-scoring, or a
    shortlist that chose them by codes each shard trains on its own."""

    answer: Answer
    proposed: list[np.ndarray] | None = None
    fetch: int = 0


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


@dataclass(frozen=True)
class Plan:
    """What a search runs with: the raw query vectors, the collection's settings with a
    query's overrides (rescore, rescore_k, candidates, shortlist) applied, and what follows
    from them; `where` filters by metadata before the index is searched."""

    raw: np.ndarray
    top_k: int
    chosen: Settings
    rescorer: WhiteningKernel
    candidates: int | None
    narrow: rescoring.Narrow | None
    allowed: np.ndarray | None

    @classmethod
    def of(
        cls,
        fitted: Fitted,
        store: DocumentStore,
        settings: Settings,
        vectors: Any,
        top_k: int,
        where: Mapping[str, Any] | None,
        overrides: Mapping[str, Any],
    ) -> "Plan":
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
        narrow = _narrow(fitted, chosen, top_k, overrides.get("shortlist") is not None)
        allowed = None if where is None else store.matching(where)
        return cls(raw, top_k, chosen, rescorer, candidates, narrow, allowed)


def answer(
    fitted: Fitted, store: DocumentStore, plan: Plan, index_lock: AbstractContextManager
) -> Answer:
    """The `plan.top_k` documents nearest each query vector of the `plan`."""
    scores, rows, kind = rescoring.search(
        fitted.kernel,
        fitted.index,
        plan.raw,
        plan.top_k,
        allowed=plan.allowed,
        raw_lookup=None if plan.chosen.rescore == "off" else store.vectors,
        space=plan.chosen.rescore,
        rescorer=plan.rescorer,
        candidates=plan.candidates,
        narrow=plan.narrow,
        index_lock=index_lock,
    )
    return Answer(_hits(store, scores, rows, kind), fitted.fitted_at)


def propose(
    fitted: Fitted, store: DocumentStore, plan: Plan, index_lock: AbstractContextManager
) -> Proposals:
    """`answer` as one shard of several gives it (see `Proposals`)."""
    if plan.chosen.rescore == "off" or plan.narrow is not None:
        return Proposals(answer(fitted, store, plan, index_lock))
    records = rescoring.propose(
        fitted.kernel,
        fitted.index,
        plan.raw,
        plan.top_k,
        raw_lookup=store.vectors,
        allowed=plan.allowed,
        space=plan.chosen.rescore,
        rescorer=plan.rescorer,
        candidates=plan.candidates,
        index_lock=index_lock,
    )
    hits = _hits(store, records.scores, records.rows, records.kind, records.proposed_of)
    return Proposals(Answer(hits, fitted.fitted_at), records.proposed, records.fetch)


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


def _hits(
    store: DocumentStore,
    scores: np.ndarray,
    rows: np.ndarray,
    kind: str,
    proposed: np.ndarray | None = None,
) -> list[list[Hit]]:
    """The stored documents of `rows` (−1 pads, and rows deleted since the search, left out),
    with the index scores that `proposed` them, if given."""
    documents = store.by_rows(rows[rows >= 0].tolist())
    by_query = [[None] * rows.shape[1]] * len(rows) if proposed is None else proposed.tolist()
    return [
        [
            Hit(doc.id, float(score), doc.text, doc.metadata, kind, by)
            for score, row, by in zip(query_scores, query_rows, query_proposed, strict=True)
            if (doc := documents.get(int(row))) is not None
        ]
        for query_scores, query_rows, query_proposed in zip(scores, rows, by_query, strict=True)
    ]
