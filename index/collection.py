"""A collection: documents, raw vectors, a whitening kernel and a FAISS index in one directory.

Layout:
    manifest.json        format version, model id, d, settings (β, γ, k, index spec), snapshot name
    documents.sqlite     id, text, metadata and raw vector of each document (the source of truth)
    documents.vectors    the raw vectors again, by row, mapped for re-scoring (index.row_file)
    snapshots/NAME/      kernel.npz and index.npz, replaced as a whole by a manifest switch
    shortlist/NAME.sq8   SQ8 codes of a kernel's vectors by row, if the settings keep a shortlist

A write stores documents in one SQLite transaction, then updates the in-memory index. The index
is saved by `fit` and `checkpoint`; on open it is reconciled with the documents (rows added since
the snapshot are transformed and added, rows deleted since are removed), so a crash at any moment
loses nothing that a write returned for and never shows half a write.

Searches are `index.search`, describe and the compression report `index.report`; what stays
here (writes, recovery, the fit policy and a sharded fit's two phases, about 530 lines) is one
class because those share the write lock and replace the fitted kernel and index as one pair:
apart, each would reach into the others' state.
"""

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from index import compression, report, search
from index.documents import Document, DocumentStore, StoredDocument, prepare
from index.encoder import (
    DEFAULT_BACKEND,
    Encoder,
    backend_of,
    check_backend,
    usable_encoder,
)
from index.errors import InvalidInput, InvalidVectors, ModelMismatch, NotFitted, StorageError
from index.kernel import WhiteningKernel
from index.search import Answer, Fitted, Hit, Plan, Proposals
from index.shortlist import Shortlist, remove_stale_codes
from index.snapshots import (
    Manifest,
    Settings,
    now,
    read_snapshot,
    remove_stale_snapshots,
    write_snapshot,
)
from index.statistics import Statistics
from index.validation import as_matrix, check_texts
from index.vector_index import VectorIndex

DOCUMENTS_FILE = "documents.sqlite"

COMPACT_AT = 0.25
"""Share of tombstoned codes (deleted or replaced documents) at which the index is built anew
from the stored vectors: a graph or flat index keeps a removed vector's code until then."""

REFIT_GROWTH = 2.0
"""An ingest that ends with this many times the documents the kernel was fitted on refits it:
a kernel fitted on the first few hundred documents of a crashed first ingest would otherwise
serve the whole corpus."""


@dataclass(frozen=True)
class WriteResult:
    """What a write did; `fitted` says whether it (re)fitted the kernel, `fit_error` why a
    collection without a kernel still has none."""

    added: int
    replaced: int
    fitted: bool
    encode_seconds: float
    index_seconds: float
    fit_error: str | None = None
    ids: tuple[str, ...] = ()
    """The written documents' ids, in order (generated ones included)."""


class Collection:
    """One collection directory. Many readers; writers are serialised; readers see a write's
    documents once its index update is in, and a refit only when it is complete."""

    def __init__(
        self,
        path: str | Path,
        encoder: Encoder | None = None,
        refit_growth: float = REFIT_GROWTH,
        fits_itself: bool = True,
    ) -> None:
        """Open the collection at `path`. `fits_itself=False` is a shard's: it never fits a
        kernel of its own (not even on open); its sharded collection installs one in two
        phases (`prepare_fit`, `commit_fit`)."""
        self.path = Path(path)
        self.encoder = encoder
        self.refit_growth = refit_growth
        self.fits_itself = fits_itself
        self._staged: dict[str, tuple[Settings, Fitted]] = {}
        """Snapshots `prepare_fit` wrote and `commit_fit` has not served yet, by name."""
        self.manifest = Manifest.load(self.path)
        if encoder is not None and encoder.model_id != self.manifest.model_id:
            raise ModelMismatch(
                f"collection {self.name} was written by model {self.manifest.model_id!r}; "
                f"it cannot be opened with {encoder.model_id!r} (their vectors do not compare). "
                "Open it with its own model, or create a new collection"
            )
        self._store = DocumentStore(self.path / DOCUMENTS_FILE, self.manifest.dimension)
        self._write_lock = threading.RLock()
        self._index_lock = threading.Lock()
        self._fitted: Fitted | None = None
        self._unsaved = False  # the in-memory index holds writes its snapshot does not
        self.fit_error: str | None = None
        """Why the collection has no kernel although it holds documents (None otherwise)."""
        with self._write_lock:
            self._recover()

    @classmethod
    def create(
        cls,
        path: str | Path,
        model_id: str,
        dimension: int,
        settings: Settings | None = None,
        encoder: Encoder | None = None,
    ) -> "Collection":
        """Create an empty collection at `path` (which must not exist) and open it."""
        cls.initialise(path, model_id, dimension, settings, backend_of(encoder))
        return cls(path, encoder)

    @staticmethod
    def initialise(
        path: str | Path,
        model_id: str,
        dimension: int,
        settings: Settings | None = None,
        backend: str = DEFAULT_BACKEND,
    ) -> None:
        """Write the manifest of an empty collection into a new directory `path`."""
        path = Path(path)
        settings = settings or Settings().for_dimension(dimension)
        if settings.k is not None and settings.k > dimension:
            raise InvalidInput(f"k={settings.k} is larger than the model dimension d={dimension}")
        VectorIndex(settings.k or dimension, settings.index_spec)  # reject a bad spec now
        path.mkdir(parents=True)
        Manifest(model_id, dimension, settings, check_backend(backend)).save(path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def kernel(self) -> WhiteningKernel | None:
        fitted = self._fitted
        return None if fitted is None else fitted.kernel

    @property
    def index(self) -> VectorIndex | None:
        fitted = self._fitted
        return None if fitted is None else fitted.index

    def count(self) -> int:
        return self._store.count()

    def close(self) -> None:
        """Close the document store after any write in progress; later calls raise StorageError."""
        with self._write_lock:
            self._store.close()
            for fitted in self._fitted_in_use():
                if fitted.shortlist is not None:
                    fitted.shortlist.close()

    # ---- writes -----------------------------------------------------------------------------

    def add(
        self, documents: Sequence[Document], upsert: bool = False, fit: bool = True
    ) -> WriteResult:
        """Encode and store documents (an existing id is a Conflict unless `upsert`).

        With `fit`, a collection without a kernel fits one on all its documents (β, γ, k of its
        settings) once it holds at least 2; later documents go through that frozen kernel.
        """
        documents = prepare(documents)
        started = time.perf_counter()
        vectors = self.require_encoder().encode([d.text for d in documents])
        encoded = time.perf_counter()
        return self._write(documents, vectors, upsert, fit, encoded - started)

    def add_vectors(
        self,
        documents: Sequence[Document],
        vectors: Any,
        upsert: bool = False,
        fit: bool = True,
    ) -> WriteResult:
        """`add` for documents whose raw vectors were computed already, by the same model."""
        documents = prepare(documents)
        vectors = as_matrix(vectors, self.manifest.dimension, "vectors")
        if len(vectors) != len(documents):
            raise InvalidVectors(f"{len(documents)} documents but {len(vectors)} vectors")
        return self._write(documents, vectors, upsert, fit, 0.0)

    def delete(self, ids: Sequence[str]) -> int:
        """Delete documents by id: all of them, or none if any id is unknown (NotFound)."""
        ids = _check_ids(ids)
        with self._write_lock:
            rows = self._store.delete(ids)
            self._update_index(rows, rows[:0], np.empty((0, self.manifest.dimension)))
        return len(rows)

    def fit(self, **changes: Any) -> WriteResult:
        """Refit the kernel and rebuild the index from the stored raw vectors (no re-encoding).

        `changes` name settings (beta, gamma, k, index_spec, rescore, rescore_k, candidates);
        those left out keep the collection's, None sets k, rescore_k or candidates back to its
        default. Queries go on against the old kernel and index until the new pair is saved,
        then switch to it at once.
        """
        started = time.perf_counter()
        with self._write_lock:
            self._fit_all(self.manifest.settings.updated(**changes))
        return WriteResult(0, 0, True, 0.0, time.perf_counter() - started)

    def fit_statistics(self, statistics: WhiteningKernel) -> WriteResult:
        """`fit` from statistics gathered elsewhere over exactly the stored documents (a
        distributed encode sums them over its workers): the same kernel, without a pass of
        Σxᵀx over the store. Statistics of another document count are refused."""
        started = time.perf_counter()
        with self._write_lock:
            if statistics.n_samples_seen_ != self.count():
                raise InvalidInput(
                    f"statistics of {statistics.n_samples_seen_} vectors cannot fit collection "
                    f"{self.name} of {self.count()} documents: fit it from its own vectors"
                )
            self._fit_all(self.manifest.settings, statistics)
        return WriteResult(0, 0, True, 0.0, time.perf_counter() - started)

    def statistics(self) -> Statistics:
        """n, Σx and Σxᵀx of the stored raw vectors: a sharded collection sums every shard's."""
        _, vectors = self._store.vectors()
        if not len(vectors):
            d = self.manifest.dimension
            return Statistics(0, np.zeros(d), np.zeros((d, d)))
        return Statistics.of(vectors)

    def extremes(self, kernel: WhiteningKernel) -> np.ndarray:
        """Each dimension's lowest and highest value over the stored vectors through `kernel`
        (two rows; none when nothing is stored): a sharded fit trains every shard's index on
        all shards' extremes when its spec learns only their range."""
        _, vectors = self._store.vectors()
        if not len(vectors):
            return np.empty((0, kernel.k_), np.float32)
        transformed = kernel.transform(vectors)
        return np.stack([transformed.min(axis=0), transformed.max(axis=0)])

    def prepare_fit(
        self,
        kernel: WhiteningKernel,
        settings: Settings,
        fitted_at: str,
        training: np.ndarray | None = None,
    ) -> str:
        """Phase one of a fit decided elsewhere (a sharded collection's): the index built with
        `kernel` from the stored vectors (trained on `training` if given, see `extremes`) and
        saved as a snapshot the manifest does not point at yet; its name. Queries go on with
        the current pair until `commit_fit`."""
        with self._write_lock:
            rows, vectors = self._store.vectors()
            fitted = self._fitted_with(kernel, settings, fitted_at, rows, vectors, training)
            snapshot = write_snapshot(self.path, kernel, fitted.index, fitted.shortlist)
            self._staged[snapshot] = (settings, fitted)
        return snapshot

    def commit_fit(self, snapshot: str) -> None:
        """Phase two: serve a snapshot `prepare_fit` staged, with the writes made since."""
        with self._write_lock:
            if snapshot not in self._staged:
                raise StorageError(
                    f"snapshot {snapshot} is not staged here: the shard restarted since "
                    "prepare_fit, prepare it again"
                )
            settings, fitted = self._staged.pop(snapshot)
            manifest = replace(self.manifest, settings=settings, fitted_at=fitted.fitted_at)
            self._serve(replace(manifest, snapshot=snapshot), fitted)
            if self._reconcile():
                self.checkpoint()

    def abort_fit(self, snapshot: str) -> None:
        """Drop a snapshot `prepare_fit` staged (another shard could not prepare its own)."""
        with self._write_lock:
            self._staged.pop(snapshot, None)
            self._remove_stale()

    def checkpoint(self) -> None:
        """Save the index as it is now, so the next open has nothing to reconcile; nothing to
        do when no write came since the last save (a shutdown rewrites only what changed)."""
        with self._write_lock:
            fitted = self._fitted
            if fitted is not None and self._unsaved:  # writers wait; readers only read
                self._switch(self.manifest, fitted)

    # ---- reads ------------------------------------------------------------------------------

    def search(
        self, texts: Sequence[str], top_k: int = 10, where: Mapping[str, Any] | None = None
    ) -> list[list[Hit]]:
        """Nearest documents by cosine in kernel space, best first, one list per text."""
        vectors = self.require_encoder().encode(check_texts(texts))  # a query needs text
        return self.search_vectors(vectors, top_k, where)

    def search_vectors(
        self,
        vectors: Any,
        top_k: int = 10,
        where: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> list[list[Hit]]:
        """`search` for raw query vectors of the collection's model.

        `overrides` (rescore, rescore_k, candidates, shortlist) replace the collection's settings
        for this search: with `rescore` "raw" or "kernel" the index proposes `candidates` per
        query (None: a few times top_k) and exact cosines of the stored raw vectors, in that
        space, order them (`index.rescoring`), of the best `shortlist` by their codes if set.
        """
        return self.answer(vectors, top_k, where, **overrides).hits

    def answer(
        self,
        vectors: Any,
        top_k: int = 10,
        where: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> Answer:
        """`search_vectors`, and which kernel answered (the service reports it per response)."""
        return search.answer(*self._planned(vectors, top_k, where, overrides))

    def propose(
        self,
        vectors: Any,
        top_k: int = 10,
        where: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> Proposals:
        """`answer` as one shard of a sharded collection gives it (`search.Proposals`)."""
        return search.propose(*self._planned(vectors, top_k, where, overrides))

    def _planned(
        self, vectors: Any, top_k: int, where: Mapping[str, Any] | None, overrides: dict[str, Any]
    ) -> tuple[Fitted, DocumentStore, Plan, threading.Lock]:
        """What `search.answer` and `search.propose` take for this query."""
        fitted, settings = self._require_fitted(), self.manifest.settings
        plan = Plan.of(fitted, self._store, settings, vectors, top_k, where, overrides)
        return fitted, self._store, plan, self._index_lock

    def transform(self, vectors: Any) -> np.ndarray:
        """Raw vectors of this collection's model through its kernel."""
        return self._require_fitted().kernel.transform(vectors)

    def quantize(self, vectors: Any) -> np.ndarray:
        """Raw vectors through the kernel and the index's codes: what the index compares."""
        fitted = self._require_fitted()
        return fitted.index.quantize(fitted.kernel.transform(vectors))

    def get(self, ids: Sequence[str]) -> list[StoredDocument]:
        return self._store.get(_check_ids(ids))

    def existing(self, ids: Sequence[str]) -> list[str]:
        """The ids among `ids` that are stored, in the order given (to check before a write)."""
        return self._store.existing(_check_ids(ids))

    def documents(self, offset: int = 0, limit: int = 100) -> list[StoredDocument]:
        return self._store.page(offset, limit)

    def raw_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows and raw vectors of all documents (for tuning and reports)."""
        return self._store.vectors()

    def raw_vectors_by_id(self) -> tuple[list[str], np.ndarray]:
        """Ids and raw vectors of all documents, in row order, read consistently (for tuning)."""
        with self._write_lock:
            rows, vectors = self._store.vectors()
            ids = self._store.ids_by_row()
        return [ids[int(row)] for row in rows], vectors

    def compression_report(
        self,
        queries: Any = None,
        relevant: Sequence[Mapping[str, float]] | None = None,
        **options: Any,
    ) -> compression.CompressionReport:
        """What each (k, index, re-scoring) would cost and keep: `report.compression_report`."""
        return report.compression_report(self, queries, relevant, **options)

    def describe(self) -> dict[str, Any]:
        """Counts, model, settings, kernel and index figures: `index.report.describe`."""
        return report.describe(self)

    @property
    def fitted(self) -> Fitted | None:
        """The kernel and index serving now (None before the first fit), as one pair."""
        return self._fitted

    # ---- internals --------------------------------------------------------------------------

    def _write(
        self,
        documents: list[Document],
        vectors: np.ndarray,
        upsert: bool,
        fit: bool,
        encode_seconds: float,
    ) -> WriteResult:
        started = time.perf_counter()
        with self._write_lock:
            new_rows, old_rows = self._store.write(documents, vectors, replace=upsert)
            fitted = self._fitted
            if fitted is not None:
                self._update_index(old_rows, new_rows, vectors)
            elif fit:
                self._fit_if_possible()
        return WriteResult(
            added=len(new_rows),
            replaced=len(old_rows),
            fitted=fitted is None and self._fitted is not None,
            encode_seconds=encode_seconds,
            index_seconds=time.perf_counter() - started,
            fit_error=self.fit_error,
            ids=tuple(document.id for document in documents),
        )

    def _update_index(self, removed: np.ndarray, added: np.ndarray, vectors: np.ndarray) -> None:
        """Bring the index in line with a store write: `removed` rows out, `added` rows in.

        Removed rows leave tombstones; once they are COMPACT_AT of the index, or when rows to
        add do not come after every indexed one (a snapshot older than a failed write), the
        index is built anew from the store, which holds the write.
        """
        fitted = self._fitted
        if fitted is None or not (len(removed) or len(added)):
            return
        self._unsaved = True
        index = fitted.index
        transformed = fitted.kernel.transform(vectors) if len(added) else None
        if fitted.shortlist is not None:  # a proposed candidate has its code
            fitted.shortlist.write(added, vectors)
        with self._index_lock:
            index.remove(removed)
            rising = not len(added) or added.min() > index.last_id
            if transformed is not None and rising:
                index.add(transformed, added)
        if not rising or index.dead_fraction > COMPACT_AT:
            rebuilt = self._build_index(fitted.kernel, self.manifest.settings.index_spec)
            self._fitted = replace(fitted, index=rebuilt)

    @property
    def refit_due(self) -> bool:
        """Whether the collection holds `refit_growth` times the documents its kernel saw."""
        fitted = self._fitted
        return fitted is not None and (
            self.count() >= self.refit_growth * fitted.kernel.n_samples_seen_
        )

    def fit_if_due(self) -> WriteResult:
        """Fit a collection that has no kernel, or refit one that has grown `refit_growth` times
        past the documents its kernel was fitted on (the end of an ingest calls this)."""
        started = time.perf_counter()
        with self._write_lock:
            fitted = self._fitted
            if fitted is None:
                self._fit_if_possible()
            elif self.refit_due:
                self._fit_all(self.manifest.settings)
            else:
                self.checkpoint()  # the next start has nothing to reconcile
        refitted = self._fitted is not fitted and self._fitted is not None
        return WriteResult(0, 0, refitted, 0.0, time.perf_counter() - started, self.fit_error)

    def _fit_if_possible(self) -> None:
        """Fit the first kernel once there are 2 documents. Settings that cannot be fitted yet
        (k above the rank with γ > 0, an index that needs more vectors to train) leave the
        documents stored and readable, and `fit_error` says why: a later write or a `fit`
        with other settings fits it."""
        if self.count() < 2:
            self.fit_error = "the kernel is fitted once the collection holds at least 2 documents"
            return
        try:
            self._fit_all(self.manifest.settings)
        except InvalidInput as exc:
            self.fit_error = (
                f"{exc} (the documents are stored: fit with other settings, or add more)"
            )

    def _fit_all(self, settings: Settings, statistics: WhiteningKernel | None = None) -> None:
        """Fit a kernel on every stored vector (or derive it from their `statistics`), build
        its index, save both, then switch."""
        rows, vectors = self._store.vectors()
        kernel = WhiteningKernel(settings.beta, settings.gamma, settings.k)
        kernel = kernel.fit(vectors) if statistics is None else kernel.merge(statistics)
        manifest = replace(self.manifest, settings=settings, fitted_at=now())
        self._switch(
            manifest, self._fitted_with(kernel, settings, manifest.fitted_at, rows, vectors)
        )

    def _fitted_with(
        self,
        kernel: WhiteningKernel,
        settings: Settings,
        fitted_at: str,
        rows: np.ndarray,
        vectors: np.ndarray,
        training: np.ndarray | None = None,
    ) -> Fitted:
        """`kernel`'s index of the stored `rows` (their raw `vectors`: every stored one; trained
        on `training` if given), and its shortlist if `settings` keep one."""
        transformed = kernel.transform(vectors)
        index = VectorIndex.build(kernel.k_, settings.index_spec, transformed, rows, training)
        shortlist = (
            None
            if settings.shortlist is None
            else Shortlist.build(self.path, kernel, rows, vectors)
        )
        return Fitted.of(kernel, index, settings, fitted_at, shortlist)

    def _build_index(self, kernel: WhiteningKernel, spec: str) -> VectorIndex:
        rows, vectors = self._store.vectors()
        return VectorIndex.build(kernel.k_, spec, kernel.transform(vectors), rows)

    def _switch(self, manifest: Manifest, fitted: Fitted) -> None:
        """Save `fitted` as a snapshot, point the manifest at it, then serve it."""
        snapshot = write_snapshot(self.path, fitted.kernel, fitted.index, fitted.shortlist)
        self._serve(replace(manifest, snapshot=snapshot), fitted)

    def _serve(self, manifest: Manifest, fitted: Fitted) -> None:
        """Point the manifest at its snapshot (written already), then serve `fitted`; other
        snapshots go, but for those staged for a commit."""
        manifest.save(self.path)
        self.manifest = manifest
        self._fitted = fitted  # a replaced shortlist's file closes with its last query
        self._unsaved = False
        self.fit_error = None
        self._remove_stale()

    def _remove_stale(self) -> None:
        """Delete snapshots and code files that neither the served pair nor a staged one uses."""
        remove_stale_snapshots(self.path, keep={self.manifest.snapshot, *self._staged})
        used = {f.shortlist.name for f in self._fitted_in_use() if f.shortlist is not None}
        remove_stale_codes(self.path, used)

    def _fitted_in_use(self) -> list[Fitted]:
        """The pair serving queries (if any) and the pairs staged for a commit."""
        staged = [fitted for _, fitted in self._staged.values()]
        return staged if self._fitted is None else [self._fitted, *staged]

    def _recover(self) -> None:
        """Load the snapshot and bring its index in line with the documents."""
        if self.manifest.snapshot is None:
            self._remove_stale()
            if self.fits_itself:
                self._fit_if_possible()
            return
        kernel, index, shortlist = read_snapshot(self.path, self.manifest)
        settings, at = self.manifest.settings, self.manifest.fitted_at
        self._fitted = Fitted.of(kernel, index, settings, at, shortlist)
        self._remove_stale()
        if shortlist is not None:
            self._fill_codes(shortlist)
        if self._reconcile():
            self.checkpoint()

    def _fill_codes(self, shortlist: Shortlist) -> None:
        """Write the codes of stored rows past the end of the code file (a file lost or cut
        short), so that every row the index may propose has one."""
        rows = self._store.rows()
        missing = rows[rows > shortlist.codes.rows]
        if len(missing):
            shortlist.write(*self._store.vectors(missing))

    def _reconcile(self) -> bool:
        """Bring the index in line with the documents: rows stored since it was built go in,
        rows deleted since come out. Whether there were any."""
        fitted = self._fitted
        assert fitted is not None
        rows = self._store.rows()
        indexed = fitted.index.ids()
        stale = np.setdiff1d(indexed, rows)
        missing = np.setdiff1d(rows, indexed)
        missing_rows, vectors = self._store.vectors(missing)
        self._update_index(stale, missing_rows, vectors)
        return bool(len(stale) or len(missing))

    def require_encoder(self) -> Encoder:
        """The encoder, if its vectors compare with the stored ones (else ModelMismatch)."""
        return usable_encoder(self.encoder, self.manifest.backend, f"collection {self.name}")

    def require_kernel(self) -> WhiteningKernel:
        """The kernel, or NotFitted saying why there is none and what to do."""
        return self._require_fitted().kernel

    def _require_fitted(self) -> Fitted:
        fitted = self._fitted
        if fitted is None:
            raise not_fitted(self.name, self.fit_error)
        return fitted


def not_fitted(name: str, fit_error: str | None) -> NotFitted:
    """What asking a collection without a kernel for one says: why, and what to do."""
    reason = fit_error or "add at least 2 documents, or fit it"
    return NotFitted(f"collection {name} has no kernel yet: {reason}")


def _check_ids(ids: Sequence[str]) -> list[str]:
    if isinstance(ids, str):
        raise InvalidInput("ids must be a list of strings, not one string: wrap it as [id]")
    ids = list(ids)
    if not ids or not all(isinstance(doc_id, str) for doc_id in ids):
        raise InvalidInput("ids must be a non-empty list of strings")
    return ids


__all__ = ["Answer", "Collection", "Document", "Hit", "Settings", "StorageError", "WriteResult"]
