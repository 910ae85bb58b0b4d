"""The service's one application object: the catalog of collections, the jobs and the metrics.

Routes translate HTTP to calls of `Engine` and its results back to JSON; every decision about
collections, encoding, fitting and tuning is made here or in the `index` library. The engine runs
its calls in the caller's thread (FastAPI's threadpool for plain `def` routes), so encoding and
FAISS never stall the event loop. Each collection serialises its writers and lets readers through.
"""

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index import (
    DEFAULT_MODEL_ID,
    Catalog,
    Collection,
    Conflict,
    Document,
    Encoder,
    IndexError_,
    InvalidInput,
    NotFitted,
    StoredDocument,
    WhiteningKernel,
    WriteResult,
)
from index.collection import Answer
from index.compression import CompressionReport
from index.documents import prepare
from index.tuning import (
    HELD_OUT_FRACTION,
    ServedTuning,
    held_out_split,
    tune_served_pairs,
    tune_served_retrieval,
)
from index.validation import check_texts, unit_rows
from service.batching import QueryBatcher
from service.config import Settings
from service.jobs import Job, JobHandle, JobRegistry
from service.telemetry import PREFIX, Family, Sample, Telemetry

logger = logging.getLogger("whitened_search")

Progress = Callable[[int, int], None]
"""Called by long work with (steps done, steps)."""

RESCORE_CANDIDATES_PER_TOP_K = 10
"""Re-scoring candidates are limited to this many times the server's max_top_k."""


@dataclass
class Startup:
    """What the background warm-up found: /ready reports it."""

    done: threading.Event = field(default_factory=threading.Event)
    models: dict[str, str] = field(default_factory=dict)  # model id -> "loaded" or the error


@dataclass(frozen=True)
class Written:
    """A synchronous write: the library's WriteResult plus what the service adds."""

    ids: list[str]
    result: WriteResult
    count: int
    fitted: bool
    fit_error: str | None


@dataclass(frozen=True)
class Tuned:
    result: ServedTuning
    applied: bool
    info: dict[str, Any] | None
    encode_seconds: float
    tune_seconds: float
    fit_seconds: float


class Engine:
    """Holds the catalog of `settings.data_dir`, the job registry and the telemetry.

    Args:
        settings: the service settings.
        telemetry: where request and encoding metrics go (a new one when None).
    """

    def __init__(self, settings: Settings, telemetry: Telemetry | None = None) -> None:
        self.settings = settings
        self.telemetry = telemetry or Telemetry()
        self.catalog = Catalog(  # locks the data directory
            Path(settings.data_dir).expanduser().resolve(),
            default_model=settings.model,
            batch_size=settings.batch_size,
            backend=settings.backend,
            cache_dir=settings.model_cache_dir,
            threads=settings.threads,
            refit_growth=settings.refit_growth,
        )
        self.jobs = JobRegistry(redact=self.catalog.redact)
        self.startup = Startup()
        self._batchers: dict[Encoder, QueryBatcher] = {}
        self._lock_batchers = threading.Lock()
        self._warmer: threading.Thread | None = None

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Open every collection and load their models in a background thread (see /ready)."""
        self._warmer = threading.Thread(target=self._warm_up, name="whitened-warm-up", daemon=True)
        self._warmer.start()

    def close(self) -> None:
        """Stop jobs after their current chunk, checkpoint and close collections, unlock."""
        self.jobs.shutdown()
        if self._warmer is not None:
            self._warmer.join(timeout=60)
        self.catalog.close()

    def _warm_up(self) -> None:
        try:
            unavailable = self.catalog.open_all()
            for name, error in unavailable.items():
                logger.error("collection %s is unavailable: %s", name, error)
            models = [self._default_model_id()]
            for name in self.catalog.names():
                if name not in unavailable:
                    try:
                        models.append(self.catalog.get(name).manifest.model_id)
                    except IndexError_:
                        continue
            for model in dict.fromkeys(models):
                try:
                    _ = self.catalog.encoder(model).dimension  # loads the model
                    self.startup.models[model] = "loaded"
                except Exception as exc:  # any loader failure is reported by /ready
                    logger.error("model %s could not be loaded: %s", model, exc)
                    self.startup.models[model] = f"failed: {exc}"
        finally:
            self.startup.done.set()

    def readiness(self) -> dict[str, Any]:
        done = self.startup.done.is_set()
        models = dict(self.startup.models)
        default_loaded = models.get(self._default_model_id()) == "loaded"
        unavailable = {  # a repaired or deleted one leaves it; /ready is open: no paths
            name: self.catalog.redact(reason) for name, reason in self.catalog.unavailable().items()
        }
        if not done:
            status = "starting"
        elif not default_loaded:
            status = "failed"
        elif unavailable or any(state != "loaded" for state in models.values()):
            status = "degraded"
        else:
            status = "ready"
        return {
            "ready": status == "ready",
            "status": status,
            "model_loaded": default_loaded,
            "models": models,
            "collections_open": len(self.catalog.names()) - len(unavailable),
            "unavailable": unavailable,
        }

    def _default_model_id(self) -> str:
        return self.catalog.encoder().model_id

    # ---- collections ------------------------------------------------------------------------

    def create_collection(
        self, name: str, model: str | None = None, given: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Create a collection; settings not `given` come from the server's defaults (a default
        k above the model's dimension becomes the dimension)."""
        if model is not None:
            self._check_model_allowed(model)
        try:
            dimension = self.catalog.encoder(model).dimension  # loads it
        except Exception as exc:  # sentence-transformers raises many kinds for a bad model
            raise InvalidInput(f"model {model!r} could not be loaded: {exc}") from exc
        self._check_candidates((given or {}).get("candidates"))
        settings = self.settings.collection_settings(dimension, given)
        return self.catalog.create(name, model, settings).describe()

    def _check_model_allowed(self, model: str) -> None:
        allowed = {self._default_model_id(), DEFAULT_MODEL_ID, *self.settings.allowed_models}
        if self.settings.model is not None:
            allowed.add(self.settings.model)
        if model not in allowed:
            raise InvalidInput(
                f"model {model!r} is not enabled on this server; leave model out for the default "
                f"({self._default_model_id()}), or ask the operator to add it to "
                "WHITENED_SEARCH_ALLOWED_MODELS"
            )

    def collection(self, name: str) -> Collection:
        return self.catalog.get(name)

    def list_collections(self) -> tuple[list[dict[str, Any]], dict[str, str]]:
        summaries, unavailable = [], {}
        for name in self.catalog.names():
            try:
                collection = self.catalog.get(name)
            except IndexError_ as exc:
                unavailable[name] = self.catalog.redact(str(exc))
                continue
            summaries.append(_summary(collection))
        return summaries, unavailable

    def describe(self, name: str) -> dict[str, Any]:
        return self.catalog.get(name).describe()

    def delete_collection(self, name: str) -> None:
        self.catalog.delete(name)

    # ---- documents --------------------------------------------------------------------------

    def add_documents(
        self, name: str, documents: Sequence[Document], upsert: bool = False, fit: bool = True
    ) -> Written:
        """Store a batch in one transaction; fit the kernel when the collection has none.

        The documents are committed before the fit: a fit that cannot happen yet (too few
        documents for k, say) is reported in `fit_error`, not as a failed write.
        """
        self._check_count(len(documents), "documents")
        collection = self.catalog.get(name)
        fit = fit and name not in self.jobs.active_collections()  # the job fits at its end
        result = collection.add(documents, upsert=upsert, fit=fit)
        self.telemetry.observe_encode("documents", result.encode_seconds, len(documents))
        return Written(
            ids=list(result.ids),
            result=result,
            count=collection.count(),
            fitted=result.fitted,
            fit_error=None if collection.kernel is not None else result.fit_error,
        )

    def submit_ingest(
        self, name: str, documents: Sequence[Document], upsert: bool = False
    ) -> tuple[Job, list[str]]:
        """Check the whole batch now, then store it in the background in committed chunks.

        After the last chunk the kernel is fitted on the whole collection if it has none, so it
        sees the whole corpus rather than the first chunk.
        """
        limit = self.settings.max_ingest_documents
        if len(documents) > limit:
            raise InvalidInput(
                f"{len(documents)} documents in one ingest job; at most {limit}: split the batch"
            )
        collection = self.catalog.get(name)
        documents = prepare(documents)
        if not upsert:
            existing = collection.existing([document.id for document in documents])
            if existing:
                raise Conflict(
                    f"{len(existing)} document id(s) already exist ({', '.join(existing[:5])}): "
                    "set upsert to replace them, or give new ids"
                )

        def work(handle: JobHandle) -> None:  # bound to this collection, not to its name
            self._ingest(handle, collection, documents, upsert)

        job = self.jobs.submit("ingest", name, len(documents), work)
        return job, [document.id for document in documents]

    def background(self, kind: str, name: str, answer: Callable[[Progress], dict[str, Any]]) -> Job:
        """Run `answer` (a tune or report, minutes at 100,000 documents) as a job whose result
        is its answer, its steps (indexes built and measured) as the job's processed and
        total; an unknown collection is a 404 now, not a failed job later."""
        self.catalog.get(name)

        def work(handle: JobHandle) -> None:
            def progress(done: int, total: int) -> None:
                handle.check_stop()
                handle.update(processed=done, total=total)

            result = answer(progress)
            handle.update(result=result, processed=handle.job.total)

        return self.jobs.submit(kind, name, 1, work)

    def _ingest(
        self, handle: JobHandle, collection: Collection, documents: list[Document], upsert: bool
    ) -> None:
        chunk = self.settings.ingest_chunk
        for start in range(0, len(documents), chunk):
            handle.check_stop()
            part = documents[start : start + chunk]
            result = collection.add(part, upsert=upsert, fit=False)
            self.telemetry.observe_encode("ingest", result.encode_seconds, len(part))
            handle.update(
                processed_add=len(part),
                added_add=result.added,
                replaced_add=result.replaced,
                encode_seconds_add=result.encode_seconds,
                index_seconds_add=result.index_seconds,
            )
        result = collection.fit_if_due()
        handle.update(
            fitted=result.fitted, fit_error=result.fit_error, fit_seconds=result.index_seconds
        )

    def get_document(self, name: str, doc_id: str) -> StoredDocument:
        return self.catalog.get(name).get([doc_id])[0]

    def list_documents(
        self, name: str, offset: int, limit: int
    ) -> tuple[list[StoredDocument], int]:
        collection = self.catalog.get(name)
        return collection.documents(offset, limit), collection.count()

    def delete_documents(self, name: str, ids: Sequence[str]) -> tuple[int, int]:
        self._check_count(len(ids), "ids")
        collection = self.catalog.get(name)
        return collection.delete(list(ids)), collection.count()

    # ---- fit and tune -----------------------------------------------------------------------

    def fit(self, name: str, changes: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
        """Refit from the stored raw vectors with the settings `changes` (others kept); queries
        use the old kernel until the switch."""
        collection = self.catalog.get(name)
        if collection.count() < 2:
            raise InvalidInput(
                f"collection {name} holds {collection.count()} document(s): fitting needs 2"
            )
        self._check_candidates(changes.get("candidates"))
        result = collection.fit(**changes)
        return collection.describe(), result.index_seconds

    def tune(
        self,
        name: str,
        *,
        pairs: Sequence[tuple[str, str, float]] | None = None,
        queries: Sequence[tuple[str, Mapping[str, float]]] | None = None,
        validation: Sequence[Any] | None = None,
        held_out: float = HELD_OUT_FRACTION,
        grid: Mapping[str, Any] | None = None,
        specs: Sequence[str] | None = None,
        spaces: Sequence[str] = ("kernel",),
        candidates: Sequence[int | None] = (None,),
        k_eval: int = 10,
        apply: bool = False,
        progress: Progress | None = None,
    ) -> Tuned:
        """Choose β, γ, k (and, for queries, index spec and re-scoring) on labelled pairs or
        queries by what the server would serve; report it on examples never chosen on
        (`validation`, else a seeded `held_out` fraction) beside raw cosine."""
        examples: list[Any] = list(pairs if pairs is not None else queries or [])
        self._check_examples(pairs, queries)
        self._check_examples(validation, None)
        collection = self.catalog.get(name)
        kernel = self._require_kernel(collection)
        if queries is not None:
            self._check_relevant(collection, examples)
            self._check_relevant(collection, validation, "validation.queries")
        options = {key: value for key, value in (grid or {}).items() if value is not None}
        if validation is None:
            mask = held_out_split(len(examples), held_out)
            train = [e for e, held in zip(examples, mask, strict=True) if not held]
            validation = [e for e, held in zip(examples, mask, strict=True) if held] or None
        else:
            train = examples
        encoder = collection.require_encoder()
        if pairs is not None:
            texts = [p[0] for p in train] + [p[1] for p in train]
            texts += [p[0] for p in validation or []] + [p[1] for p in validation or []]
            vectors, encode_seconds = self._encode(encoder, texts, "tune")
            started = time.perf_counter()
            n, m = len(train), len(validation or [])
            result = tune_served_pairs(
                kernel,
                (vectors[:n], vectors[n : 2 * n], [p[2] for p in train]),
                None
                if not m
                else (
                    vectors[2 * n : 2 * n + m],
                    vectors[2 * n + m :],
                    [p[2] for p in validation or []],
                ),
                **options,
            )
        else:
            texts = [q for q, _ in train] + [q for q, _ in validation or []]
            vectors, encode_seconds = self._encode(encoder, texts, "tune")
            started = time.perf_counter()
            doc_ids, doc_vectors = collection.raw_vectors_by_id()
            n = len(train)
            result = tune_served_retrieval(
                kernel,
                doc_vectors,
                doc_ids,
                (vectors[:n], [dict(judged) for _, judged in train]),
                None
                if validation is None
                else (vectors[n:], [dict(judged) for _, judged in validation]),
                specs=specs or [collection.manifest.settings.index_spec],
                spaces=spaces,
                candidates=[self._check_candidates(c) for c in candidates],
                k_eval=k_eval,
                progress=progress,
                **options,
            )
        tune_seconds = time.perf_counter() - started
        info, fit_seconds = None, 0.0
        if apply:
            chosen = result.chosen
            fitted = collection.fit(**chosen.settings)
            info, fit_seconds = collection.describe(), fitted.index_seconds
        return Tuned(result, apply, info, encode_seconds, tune_seconds, fit_seconds)

    def _check_candidates(self, candidates: int | None) -> int | None:
        """Candidates per query for re-scoring, within RESCORE_CANDIDATES_PER_TOP_K·max_top_k."""
        most = RESCORE_CANDIDATES_PER_TOP_K * self.settings.max_top_k
        if candidates is not None and candidates > most:
            raise InvalidInput(f"candidates={candidates} is above the limit {most}")
        return candidates

    def _check_examples(self, pairs: Sequence[Any] | None, queries: Sequence[Any] | None) -> None:
        examples = len(pairs) if pairs is not None else len(queries or [])
        if examples > self.settings.max_tune_examples:
            raise InvalidInput(
                f"{examples} labelled examples; at most {self.settings.max_tune_examples} per "
                "request: sample them"
            )

    @staticmethod
    def _check_relevant(
        collection: Collection,
        queries: Sequence[tuple[str, Mapping[str, float]]] | None,
        field: str = "queries",
    ) -> None:
        """Judgments must name stored documents: an unknown id would score as a silent miss."""
        for position, (_, judged) in enumerate(queries or []):
            known = set(collection.existing(list(judged))) if judged else set()
            unknown = sorted(set(judged) - known)
            if unknown:
                raise InvalidInput(
                    f"{field}[{position}].relevant names {len(unknown)} document id(s) that "
                    f"collection {collection.name} does not hold ({', '.join(unknown[:5])}): "
                    "ingest them first, or drop them from the judgments"
                )

    def report(
        self,
        name: str,
        *,
        pairs: Sequence[tuple[str, str, float]] | None = None,
        queries: Sequence[tuple[str, Mapping[str, float]]] | None = None,
        **options: Any,
    ) -> tuple[CompressionReport, float]:
        """The compression report of a collection (see index.compression), and its seconds."""
        self._check_examples(pairs, queries)
        collection = self.catalog.get(name)
        self._require_kernel(collection)
        self._check_relevant(collection, queries)
        encoder = collection.require_encoder()
        started = time.perf_counter()
        if pairs is not None:
            n = len(pairs)
            vectors, _ = self._encode(
                encoder, [p[0] for p in pairs] + [p[1] for p in pairs], "report"
            )
            options["pairs"] = (vectors[:n], vectors[n:], [p[2] for p in pairs])
        elif queries is not None:
            options["queries"], _ = self._encode(encoder, [q for q, _ in queries], "report")
            options["relevant"] = [dict(judged) for _, judged in queries]
        result = collection.compression_report(**options)
        return result, time.perf_counter() - started

    # ---- search -----------------------------------------------------------------------------

    def query(
        self,
        name: str,
        texts: Sequence[str],
        top_k: int = 10,
        where: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> tuple[Answer, float, float]:
        """Hits per text, best first, and the kernel that answered; encode and search seconds."""
        self._check_count(len(texts), "texts")
        texts = check_texts(texts)  # a query needs text; documents may be empty
        if top_k > self.settings.max_top_k:
            raise InvalidInput(f"top_k={top_k} is above the limit {self.settings.max_top_k}")
        overrides = dict(overrides or {})
        self._check_candidates(overrides.get("candidates"))
        collection = self.catalog.get(name)
        self._require_kernel(collection)
        encoder = collection.require_encoder()
        vectors, encode_seconds = self._encode(encoder, texts, "query", batched=True)
        started = time.perf_counter()
        answer = collection.answer(vectors, top_k, where, **overrides)
        return answer, encode_seconds, time.perf_counter() - started

    def embed(self, name: str, texts: Sequence[str], space: str) -> np.ndarray:
        self._check_count(len(texts), "texts")
        collection = self.catalog.get(name)
        if space == "kernel":
            self._require_kernel(collection)
        vectors, _ = self._encode(collection.require_encoder(), texts, "embed")
        return collection.transform(vectors) if space == "kernel" else vectors

    def similarity(
        self,
        pairs: Sequence[tuple[str, str]],
        collection_name: str | None = None,
        codes: bool = False,
    ) -> np.ndarray:
        """Cosine of each pair: raw, through a collection's kernel, or of its index's codes."""
        self._check_count(len(pairs), "pairs")
        collection = None if collection_name is None else self.catalog.get(collection_name)
        if collection is not None:
            self._require_kernel(collection)
        encoder = self.catalog.encoder() if collection is None else collection.require_encoder()
        texts = [a for a, _ in pairs] + [b for _, b in pairs]
        vectors, _ = self._encode(encoder, texts, "similarity")
        if collection is None:
            vectors = unit_rows(vectors)
        else:
            vectors = collection.quantize(vectors) if codes else collection.transform(vectors)
        n = len(pairs)
        return np.einsum("ij,ij->i", vectors[:n], vectors[n:], dtype=np.float64)

    # ---- metrics ----------------------------------------------------------------------------

    def metric_families(self) -> list[Family]:
        documents, fitted = [], []
        for name in self.catalog.names():
            try:
                collection = self.catalog.get(name)
                documents.append(
                    Sample(f"{PREFIX}_documents", {"collection": name}, collection.count())
                )
                fitted.append(
                    Sample(
                        f"{PREFIX}_collection_fitted",
                        {"collection": name},
                        collection.kernel is not None,
                    )
                )
            except IndexError_:
                continue
        ready = self.readiness()
        jobs = [Sample(f"{PREFIX}_jobs", {"state": s}, n) for s, n in self.jobs.counts().items()]
        return [
            *self.telemetry.families(),
            Family(f"{PREFIX}_documents", "gauge", "Documents per collection.", documents),
            Family(
                f"{PREFIX}_collection_fitted", "gauge", "1 if the collection has a kernel.", fitted
            ),
            Family(
                f"{PREFIX}_collections_unavailable",
                "gauge",
                "Collections that failed to open.",
                [Sample(f"{PREFIX}_collections_unavailable", {}, len(ready["unavailable"]))],
            ),
            Family(f"{PREFIX}_jobs", "gauge", "Background jobs by state.", jobs),
            Family(
                f"{PREFIX}_ready",
                "gauge",
                "1 when the model is loaded and collections are open.",
                [Sample(f"{PREFIX}_ready", {}, ready["ready"])],
            ),
        ]

    # ---- internals --------------------------------------------------------------------------

    def _check_count(self, n: int, what: str) -> None:
        limit = self.settings.max_texts_per_request
        if n > limit:
            hint = (
                "; use POST /collections/{name}/ingest for large batches"
                if what == "documents"
                else ""
            )
            raise InvalidInput(f"{n} {what} in one request; at most {limit}: split it{hint}")

    def _require_kernel(self, collection: Collection) -> WhiteningKernel:
        if collection.kernel is None and collection.name in self.jobs.active_collections():
            raise NotFitted(
                f"collection {collection.name} has no kernel yet: an ingest job is running; "
                "the kernel is fitted when it finishes"
            )
        return collection.require_kernel()

    def _batcher(self, encoder: Encoder) -> QueryBatcher:
        """The query batcher of `encoder` (one per model: batches never mix models)."""
        with self._lock_batchers:
            batcher = self._batchers.get(encoder)
            if batcher is None:
                window = self.settings.query_batch_seconds()
                batcher = self._batchers[encoder] = QueryBatcher(encoder.encode, window)
            return batcher

    def _encode(
        self, encoder: Encoder, texts: Sequence[str], operation: str, batched: bool = False
    ) -> tuple[np.ndarray, float]:
        """Vectors of `texts` and the seconds it took; `batched` lets a single text share a
        forward pass with concurrent ones (settings.query_batch_seconds())."""
        started = time.perf_counter()
        if batched and len(texts) == 1 and self.settings.query_batch_seconds() > 0:
            vectors = self._batcher(encoder).encode(texts[0])[None]
        else:
            vectors = encoder.encode(list(texts))
        seconds = time.perf_counter() - started
        self.telemetry.observe_encode(operation, seconds, len(texts))
        return vectors, seconds


def _summary(collection: Collection) -> dict[str, Any]:
    manifest = collection.manifest
    kernel = collection.kernel
    return {
        "name": collection.name,
        "model_id": manifest.model_id,
        "dimension": manifest.dimension,
        "count": collection.count(),
        "fitted": kernel is not None,
        "k": None if kernel is None else kernel.k_,
        "beta": manifest.settings.beta,
        "gamma": manifest.settings.gamma,
        "index_spec": manifest.settings.index_spec,
    }
