"""What every use case shares: settings, the catalog, jobs, telemetry, and the request limits.

The limits of a request (texts per request, candidates, a kernel while an ingest runs) and the
timed, batched encoding live here once, so each use case asks the same question the same way.
"""

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from index import Catalog, Encoder, InvalidInput, NotFitted, WhiteningKernel
from index.catalog import Stored
from index.encoder import require_compatible
from service.batching import QueryBatcher
from service.config import ServerSettings
from service.jobs import JobRegistry
from service.telemetry import Telemetry

Progress = Callable[[int, int], None]
"""Called by long work with (steps done, steps)."""

RESCORE_CANDIDATES_PER_TOP_K = 10
"""Re-scoring candidates are limited to this many times the server's max_top_k."""


@dataclass
class Context:
    """The service's state, built once by `Engine` and handed to every use case."""

    settings: ServerSettings
    catalog: Catalog
    jobs: JobRegistry
    telemetry: Telemetry
    _batchers: dict[Encoder, QueryBatcher] = field(default_factory=dict)
    _lock_batchers: threading.Lock = field(default_factory=threading.Lock)

    def default_model_id(self) -> str:
        """The id of the model collections get when they name none."""
        return self.catalog.encoder().model_id

    def check_count(self, n: int, what: str) -> None:
        """At most max_texts_per_request texts, documents, ids or pairs in one request."""
        limit = self.settings.max_texts_per_request
        if n > limit:
            hint = (
                "; use POST /collections/{name}/ingest for large batches"
                if what == "documents"
                else ""
            )
            raise InvalidInput(f"{n} {what} in one request; at most {limit}: split it{hint}")

    def check_candidates(self, candidates: int | None) -> int | None:
        """Candidates per query for re-scoring, within RESCORE_CANDIDATES_PER_TOP_K·max_top_k."""
        most = RESCORE_CANDIDATES_PER_TOP_K * self.settings.max_top_k
        if candidates is not None and candidates > most:
            raise InvalidInput(f"candidates={candidates} is above the limit {most}")
        return candidates

    def require_kernel(self, collection: Stored) -> WhiteningKernel:
        """The collection's kernel; while its first ingest job runs, a 409 that says so."""
        if collection.kernel is None and collection.name in self.jobs.active_collections():
            raise NotFitted(
                f"collection {collection.name} has no kernel yet: an ingest job is running; "
                "the kernel is fitted when it finishes"
            )
        return collection.require_kernel()

    def ingest_encoder(self, collection: Stored) -> Encoder:
        """The encoder of ingest jobs into `collection`: its model on the settings' bulk backend
        (`ServerSettings.bulk_backend`), if its vectors compare with the stored ones."""
        backend = self.settings.bulk_backend()
        require_compatible(collection.manifest.backend, backend, f"collection {collection.name}")
        return self.catalog.encoder(collection.manifest.model_id, backend)  # loads it once

    def encode(
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

    def _batcher(self, encoder: Encoder) -> QueryBatcher:
        """The query batcher of `encoder` (one per model: batches never mix models)."""
        with self._lock_batchers:
            batcher = self._batchers.get(encoder)
            if batcher is None:
                window = self.settings.query_batch_seconds()
                batcher = self._batchers[encoder] = QueryBatcher(encoder.encode, window)
            return batcher
