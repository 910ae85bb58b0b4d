"""One collection split into shards by a stable hash of each document's id, with one kernel.

Each shard is a collection directory of its own (`shard-0/`, `shard-1/`, ...) that never fits a
kernel by itself: the sharded collection sums every shard's statistics (n, Σx, Σxᵀx add exactly),
derives one kernel, and installs it in two phases: every shard first builds its index with that
kernel and writes it as a snapshot its manifest does not point at yet; only when all have, each
switches, while queries wait for the switch to finish. So an answer never mixes two kernels, and
it says which one answered (`fitted_at`, the same on every shard). An index that learns only each
dimension's range (SQ codes, the default) is trained on every shard's extremes, which merge
exactly too, so a vector's codes are the same on any shard as in one collection.

A query is encoded once and sent to every shard; each proposes its best candidates by index
score and re-scores them through the shared kernel. One collection would re-score only the best
`candidates` by index score across all shards, so the merge keeps those, and orders them by
score (`merge`): with shared codes, the answer is one collection's. (Shards that train apart,
IVF or PQ, and a shortlist, whose codes each shard trains on its own, answer as well, not alike.)
Writes, deletes and gets go to the shard that owns each id. The shards here are `Collection`
objects in this process; they are called only with and for plain data (documents, vectors,
statistics, kernels), so a shard in another process can take their place.
"""

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from index import index_spec, report
from index.collection import REFIT_GROWTH, Collection, WriteResult, not_fitted
from index.documents import Document, StoredDocument, prepare
from index.encoder import DEFAULT_BACKEND, Encoder, backend_of, usable_encoder
from index.errors import Conflict, InvalidInput, NotFitted, NotFound, StorageError
from index.kernel import WhiteningKernel
from index.search import Answer, Hit, Proposals
from index.snapshots import Manifest, Settings, now
from index.statistics import Statistics
from index.storage import atomic_write
from index.validation import as_matrix, check_texts

LAYOUT_FILE = "shards.json"
"""The number of shards, written once at create: the hash routes by it, so it never changes."""

T = TypeVar("T")


def shard_of(doc_id: str, shards: int) -> int:
    """The shard that owns `doc_id`: the same on every process and every run (not `hash()`,
    which Python salts per process)."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def shard_path(path: Path, shard: int) -> Path:
    return path / f"shard-{shard}"


def shard_count(path: Path) -> int:
    """The number of shards of the sharded collection at `path` (its layout file)."""
    try:
        return int(json.loads((path / LAYOUT_FILE).read_text())["shards"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StorageError(f"{path} is not a sharded collection: {exc}") from exc


class ShardedCollection:
    """A collection over shards, fitted as one.

    `shards` are the shards' collections in shard order: `Collection` objects (`open`), or
    stand-ins with the same methods that call them in other processes (service.cluster).
    """

    def __init__(
        self,
        name: str,
        shards: Sequence[Any],
        encoder: Encoder | None = None,
        refit_growth: float = REFIT_GROWTH,
    ) -> None:
        self.name = name
        self.encoder = encoder
        self.refit_growth = refit_growth
        self.fit_error: str | None = None
        """Why the collection has no kernel although it holds documents (None otherwise)."""
        self.shards = list(shards)
        self._pool = ThreadPoolExecutor(max_workers=len(self.shards), thread_name_prefix="shard")
        self._fit_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._manifest: Manifest | None = None
        self._kernel: WhiteningKernel | None = None
        self._gate = _SwitchGate()

    @classmethod
    def open(
        cls, path: str | Path, encoder: Encoder | None = None, refit_growth: float = REFIT_GROWTH
    ) -> "ShardedCollection":
        """The sharded collection at `path`, its shards opened in this process."""
        path = Path(path)
        shards = [
            Collection(shard_path(path, i), encoder, fits_itself=False)
            for i in range(shard_count(path))
        ]
        return cls(path.name, shards, encoder, refit_growth)

    @staticmethod
    def initialise(
        path: str | Path,
        model_id: str,
        dimension: int,
        shards: int,
        settings: Settings | None = None,
        backend: str = DEFAULT_BACKEND,
    ) -> None:
        """Write the shards' empty collections and the layout into a new directory `path`."""
        if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= 256:
            raise InvalidInput(f"shards must be an integer from 1 to 256, got {shards!r}")
        path = Path(path)
        settings = settings or Settings().for_dimension(dimension)
        path.mkdir(parents=True)
        for i in range(shards):
            Collection.initialise(shard_path(path, i), model_id, dimension, settings, backend)
        with atomic_write(path / LAYOUT_FILE) as handle:
            handle.write(json.dumps({"shards": shards}).encode())

    @classmethod
    def create(
        cls,
        path: str | Path,
        model_id: str,
        dimension: int,
        shards: int,
        settings: Settings | None = None,
        encoder: Encoder | None = None,
    ) -> "ShardedCollection":
        """Create an empty sharded collection at `path` (which must not exist) and open it."""
        cls.initialise(path, model_id, dimension, shards, settings, backend_of(encoder))
        return cls.open(path, encoder)

    @property
    def manifest(self) -> Manifest:
        """Shard 0's: every shard has the same model and settings, and the same kernel. Kept
        here until the next fit (only `fit` changes them), so a query asks no shard for it."""
        manifest = self._manifest
        if manifest is None:
            manifest = self._manifest = self.shards[0].manifest
        return manifest

    @property
    def settings(self) -> Settings:
        return self.manifest.settings

    def count(self) -> int:
        return sum(self._each(lambda shard: shard.count()))

    def close(self) -> None:
        self._pool.shutdown()
        for shard in self.shards:
            shard.close()

    def checkpoint(self) -> None:
        self._each(lambda shard: shard.checkpoint())

    # ---- writes -----------------------------------------------------------------------------

    def add(
        self, documents: Sequence[Document], upsert: bool = False, fit: bool = True
    ) -> WriteResult:
        """Encode once, store each document in its shard, and (with `fit`) fit the first kernel
        once the shards hold 2 documents between them."""
        documents = prepare(documents)
        started = time.perf_counter()
        vectors = self.require_encoder().encode([d.text for d in documents])
        written = self.add_vectors(documents, vectors, upsert, fit)
        return replace(written, encode_seconds=time.perf_counter() - started)

    def add_vectors(
        self, documents: Sequence[Document], vectors: Any, upsert: bool = False, fit: bool = True
    ) -> WriteResult:
        """`add` for raw vectors of the collection's model. Each shard's write is its own
        transaction: a failure on one leaves the others' documents stored (re-send with
        `upsert` to complete it)."""
        documents = prepare(documents)
        vectors = as_matrix(vectors, self.shards[0].manifest.dimension, "vectors")
        if len(vectors) != len(documents):
            raise InvalidInput(f"{len(documents)} documents but {len(vectors)} vectors")
        mine = self._positions([d.id for d in documents])
        with self._write_lock:  # ids checked absent stay absent until they are written
            if not upsert:  # a shard refuses an existing id, but only its own: ask them all
                stored = [
                    doc_id
                    for shard, rows in zip(self.shards, mine, strict=True)
                    if len(rows)
                    for doc_id in shard.existing([documents[r].id for r in rows])
                ]
                if stored:
                    raise Conflict(
                        f"{len(stored)} document id(s) exist already ({', '.join(stored[:5])}): "
                        "send them with upsert to replace them"
                    )
            # upsert on the shards: a shard actor restarted after committing a write runs the
            # call again (service.cluster), and must replace what it wrote, not refuse it
            results = self._each(
                lambda shard, rows: (
                    shard.add_vectors([documents[r] for r in rows], vectors[rows], True, False)
                    if rows
                    else None
                ),
                mine,
            )
        written = [r for r in results if r is not None]
        fitted = fit and self._fit_if_possible()
        return WriteResult(
            added=sum(r.added for r in written),
            replaced=sum(r.replaced for r in written) if upsert else 0,  # else: its own retries
            fitted=fitted,
            encode_seconds=0.0,
            index_seconds=max((r.index_seconds for r in written), default=0.0),
            fit_error=self.fit_error,
            ids=tuple(d.id for d in documents),
        )

    def delete(self, ids: Sequence[str]) -> int:
        """Delete documents by id from their shards: all of them, or none if any is unknown."""
        split = zip(self.shards, self._split(ids), strict=True)
        by_shard = [(shard, mine) for shard, mine in split if mine]
        with self._write_lock:
            for shard, mine in by_shard:
                shard.get(mine)  # NotFound names the unknown ones before anything is deleted
            return sum(self._delete_checked(shard, mine) for shard, mine in by_shard)

    @staticmethod
    def _delete_checked(shard: Any, ids: list[str]) -> int:
        """Delete `ids`, all stored a moment ago: NotFound now means a shard actor restarted
        after its delete committed and ran the call again, so they are deleted."""
        try:
            return shard.delete(ids)
        except NotFound:
            return len(ids)

    def fit(self, **changes: Any) -> WriteResult:
        """Sum every shard's statistics, derive one kernel with the settings (and `changes`),
        have every shard build its index with it, then switch them all at once."""
        started = time.perf_counter()
        with self._fit_lock:
            settings = self.settings.updated(**changes)
            parts: list[Statistics] = self._each(lambda shard: shard.statistics())
            total = sum(parts[1:], parts[0])
            if total.n < 2:
                raise NotFitted("the kernel is fitted once the collection holds 2 documents")
            kernel = WhiteningKernel(settings.beta, settings.gamma, settings.k).merge(total)
            fitted_at = now()
            training = self._training(kernel, settings)
            settled = self._settle(
                lambda shard: shard.prepare_fit(kernel, settings, fitted_at, training)
            )
            failures = [outcome for outcome in settled if isinstance(outcome, BaseException)]
            if failures:
                for shard, outcome in zip(self.shards, settled, strict=True):
                    if isinstance(outcome, str):
                        shard.abort_fit(outcome)
                raise failures[0]
            with self._gate.switching():
                try:
                    for shard, snapshot in zip(self.shards, settled, strict=True):
                        try:
                            shard.commit_fit(snapshot)
                        except StorageError:  # it restarted between the phases: again
                            shard.commit_fit(shard.prepare_fit(kernel, settings, fitted_at))
                finally:
                    self._manifest = self._kernel = None  # asked again after the switch
        self.fit_error = None
        return WriteResult(0, 0, True, 0.0, time.perf_counter() - started)

    def _training(self, kernel: WhiteningKernel, settings: Settings) -> np.ndarray | None:
        """What every shard trains its index on: all shards' extremes through `kernel` when the
        spec learns only their range (SQ codes: then each shard codes a vector as one index of
        every vector would), else None (nothing to train, or each trains on its own vectors:
        IVF lists, PQ codebooks do not merge)."""
        if not index_spec.parse(settings.index_spec, kernel.k_).trained_by_range:
            return None
        return np.concatenate(self._each(lambda shard: shard.extremes(kernel)))

    def fit_if_due(self) -> WriteResult:
        """Fit the first kernel, or refit once the shards hold `refit_growth` times the
        documents the kernel saw (the end of an ingest calls this), else checkpoint them."""
        started = time.perf_counter()
        kernel = self.kernel
        if kernel is None:
            fitted = self._fit_if_possible()
        elif self.count() >= self.refit_growth * kernel.n_samples_seen_:
            fitted = self.fit().fitted
        else:
            self.checkpoint()
            fitted = False
        return WriteResult(0, 0, fitted, 0.0, time.perf_counter() - started, self.fit_error)

    def _fit_if_possible(self) -> bool:
        """Fit the first kernel once the shards hold 2 documents; settings that cannot be fitted
        yet leave the documents stored, and `fit_error` says why (as a collection does)."""
        # the manifest says whether a kernel is installed, without fetching the kernel itself
        if self.manifest.fitted_at is not None:
            return False
        if self.count() < 2:
            self.fit_error = "the kernel is fitted once the collection holds at least 2 documents"
            return False
        try:
            return self.fit().fitted
        except InvalidInput as exc:
            self.fit_error = (
                f"{exc} (the documents are stored: fit with other settings, or add more)"
            )
            return False

    # ---- reads ------------------------------------------------------------------------------

    @property
    def kernel(self) -> WhiteningKernel | None:
        """The shards' kernel, kept here as the manifest is (it is megabytes from a remote one)."""
        if self._kernel is None and self.manifest.fitted_at is not None:
            self._kernel = self.shards[0].kernel
        return self._kernel

    def require_kernel(self) -> WhiteningKernel:
        """The kernel, or NotFitted saying why there is none and what to do."""
        kernel = self.kernel
        if kernel is None:
            raise not_fitted(self.name, self.fit_error)
        return kernel

    def transform(self, vectors: Any) -> np.ndarray:
        """Raw vectors of this collection's model through its kernel."""
        return self.require_kernel().transform(vectors)

    def quantize(self, vectors: Any) -> np.ndarray:
        """The index codes of raw vectors, decoded, as every shard holds them: the same on each
        where the index trains nothing or only a range (`_training`). Refused where each shard
        trains its own (IVF lists, PQ codebooks): their codes do not compare; kernel vectors do."""
        spec = index_spec.parse(self.settings.index_spec, self.require_kernel().k_)
        if spec.trains_apart:
            raise InvalidInput(
                f"collection {self.name} is sharded and its index spec {spec.text!r} trains on "
                "each shard's own vectors, so its codes differ from shard to shard: compare "
                "kernel vectors instead (codes=false)"
            )
        return self.shards[0].quantize(vectors)

    def search(
        self, texts: Sequence[str], top_k: int = 10, where: Mapping[str, Any] | None = None
    ) -> list[list[Hit]]:
        vectors = self.require_encoder().encode(check_texts(texts))
        return self.answer(vectors, top_k, where).hits

    def answer(
        self,
        vectors: Any,
        top_k: int = 10,
        where: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> Answer:
        """Every shard's proposals, merged as one index over them all would rank them (`merge`);
        one kernel answered all of them.

        A shard that fails to answer (its process died, or its call timed out) is left out and
        named in `missing_shards`: the answer is partial, and says so. When none answers, the
        first failure is raised."""
        with self._gate.reading():
            settled = self._settle(lambda shard: shard.propose(vectors, top_k, where, **overrides))
        proposals = [p for p in settled if isinstance(p, Proposals)]
        missing = tuple(i for i, p in enumerate(settled) if not isinstance(p, Proposals))
        if not proposals:
            raise settled[0]
        kernels = {p.answer.fitted_at for p in proposals}
        if len(kernels) != 1:
            raise StorageError(
                f"the shards of {self.name} hold different kernels ({sorted(map(str, kernels))}): "
                "fit the collection again"
            )
        return Answer(merge(proposals, top_k), proposals[0].answer.fitted_at, missing)

    def existing(self, ids: Sequence[str]) -> list[str]:
        """The ids among `ids` that are stored, in the order given."""
        ids = list(ids)
        found = self._each(
            lambda shard, mine: shard.existing(mine) if mine else [], self._split(ids)
        )
        stored = {doc_id for part in found for doc_id in part}
        return [doc_id for doc_id in ids if doc_id in stored]

    def documents(self, offset: int = 0, limit: int = 100) -> list[StoredDocument]:
        """A page of documents: shard 0's, then shard 1's, ... (each in its own order)."""
        page: list[StoredDocument] = []
        for shard, count in zip(self.shards, self._each(lambda s: s.count()), strict=True):
            if offset >= count:
                offset -= count
                continue
            if len(page) >= limit:
                break
            page += shard.documents(offset, limit - len(page))
            offset = 0
        return page

    def raw_vectors_by_id(self) -> tuple[list[str], np.ndarray]:
        """Ids and raw vectors of every document, shard by shard (for tuning and reports)."""
        parts = self._each(lambda shard: shard.raw_vectors_by_id())
        ids = [doc_id for part_ids, _ in parts for doc_id in part_ids]
        return ids, np.concatenate([vectors for _, vectors in parts])

    compression_report = report.compression_report
    """`report.compression_report(self, queries, relevant, **options)`: over every shard's
    vectors, as over one collection's."""

    def describe(self) -> dict[str, Any]:
        """One collection's description (`index.report.describe`) from the shards' own: counts
        and bytes summed or weighted by documents, the rest as every shard has it."""
        return report.describe_shards(self, self._each(lambda shard: shard.describe()))

    def get(self, ids: Sequence[str]) -> list[StoredDocument]:
        """Documents by id, in the order asked, each from its shard."""
        ids = list(ids)
        found: dict[str, StoredDocument] = {}
        for shard, mine in zip(self.shards, self._split(ids), strict=True):
            if mine:
                found |= {doc.id: doc for doc in shard.get(mine)}
        return [found[i] for i in ids]

    # ---- internals --------------------------------------------------------------------------

    def _each(self, call: Callable[..., T], *per_shard: Sequence[Any]) -> list[T]:
        """`call(shard, *its item of each per_shard)` on every shard at once, answers in shard
        order (the first failure raised)."""
        return list(self._pool.map(call, self.shards, *per_shard))

    def require_encoder(self) -> Encoder:
        """The encoder, if its vectors compare with those the shards store (else ModelMismatch)."""
        backend = self.manifest.backend
        return usable_encoder(self.encoder, backend, f"collection {self.name}")

    def _settle(self, call: Callable[[Collection], T]) -> list[T | BaseException]:
        """`call(shard)` on every shard at once, each one's answer or exception, in shard order:
        a phase that fails on one shard must still know what the others did."""
        futures = [self._pool.submit(call, shard) for shard in self.shards]
        return [future.exception() or future.result() for future in futures]

    def _positions(self, ids: Sequence[str]) -> list[list[int]]:
        """The positions in `ids` of the ids each shard owns, in the order given."""
        mine: list[list[int]] = [[] for _ in self.shards]
        for position, doc_id in enumerate(ids):
            mine[shard_of(doc_id, len(self.shards))].append(position)
        return mine

    def _split(self, ids: Sequence[str]) -> list[list[str]]:
        """`ids` by the shard that owns them, each list in the order given."""
        ids = list(ids)
        return [[ids[p] for p in positions] for positions in self._positions(ids)]


def merge(proposals: Sequence[Proposals], top_k: int) -> list[list[Hit]]:
    """The shards' proposals as one collection of all their documents answers: re-scored, the
    best `top_k` of the `fetch` candidates with the best index scores across shards (the
    shards share the index's training where it merges, `ShardedCollection._training`); without
    re-scoring, the best by score."""
    proposed = [p.proposed for p in proposals if p.proposed is not None]
    merged = []
    for q in range(len(proposals[0].answer.hits)):
        hits = [hit for p in proposals for hit in p.answer.hits[q]]
        if len(proposed) == len(proposals):
            scores = np.concatenate([shard[q] for shard in proposed])
            hits = _best_proposed(hits, scores, proposals[0].fetch)
        merged.append(sorted(hits, key=lambda hit: -hit.score)[:top_k])
    return merged


def _best_proposed(hits: list[Hit], scores: np.ndarray, fetch: int) -> list[Hit]:
    """The `hits` whose index score is among the best `fetch` of all proposed `scores` (of a
    tie on the last score kept, the first ones: the first shards')."""
    if len(scores) <= fetch:
        return hits
    last = float(-np.partition(-scores, fetch - 1)[fetch - 1])
    room = fetch - int(np.sum(scores > last))  # places left for scores equal to the last
    kept = []
    for hit in hits:
        if hit.proposed is None or hit.proposed < last:
            continue
        if hit.proposed == last:
            room -= 1
            if room < 0:
                continue
        kept.append(hit)
    return kept


class _SwitchGate:
    """Queries run together; a kernel switch waits for the running ones and holds new ones back
    until every shard has switched."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._switching = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._switching)
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                self._condition.notify_all()

    @contextmanager
    def switching(self) -> Iterator[None]:
        with self._condition:
            self._switching = True
            self._condition.wait_for(lambda: self._readers == 0)
        try:
            yield
        finally:
            with self._condition:
                self._switching = False
                self._condition.notify_all()
