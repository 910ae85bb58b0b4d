"""The service's one application object: it builds the shared state and the use cases.

Routes call the use cases (`engine.collections`, `.documents`, `.tuning`, `.search`, `.ops`) and
translate their results to JSON; every decision about collections, encoding, fitting and tuning
is made there or in the `index` library. Use cases run in the caller's thread (FastAPI's
threadpool for plain `def` routes), so encoding and FAISS never stall the event loop.
"""

import threading
from pathlib import Path

from index import Catalog
from index.catalog import IN_PROCESS, Placement
from service.config import ServerSettings
from service.jobs import JobRegistry
from service.telemetry import Telemetry
from service.usecases.collections import Collections
from service.usecases.context import Context
from service.usecases.documents import Documents
from service.usecases.ops import Operations
from service.usecases.search import Search
from service.usecases.tuning import Tuning


class Engine:
    """Holds the catalog of `settings.data_dir` (locked), the job registry and the telemetry.

    Args:
        settings: the service settings.
        telemetry: where request and encoding metrics go (a new one when None).
        placement: where models run and shards open (default: in this process;
            service.cluster_app puts them in Ray).
    """

    def __init__(
        self,
        settings: ServerSettings,
        telemetry: Telemetry | None = None,
        placement: Placement = IN_PROCESS,
    ) -> None:
        catalog = Catalog(  # locks the data directory
            Path(settings.data_dir).expanduser().resolve(),
            default_model=settings.model,
            batch_size=settings.batch_size,
            backend=settings.backend,
            cache_dir=settings.model_cache_dir,
            threads=settings.threads,
            refit_growth=settings.refit_growth,
            placement=placement,
        )
        self.context = Context(
            settings, catalog, JobRegistry(redact=catalog.redact), telemetry or Telemetry()
        )
        self.catalog = catalog
        self.jobs = self.context.jobs
        self.collections = Collections(self.context)
        self.documents = Documents(self.context)
        self.tuning = Tuning(self.context)
        self.search = Search(self.context)
        self.ops = Operations(self.context)
        self._warmer: threading.Thread | None = None

    def start(self) -> None:
        """Open every collection and load their models in a background thread (see /ready)."""
        self._warmer = threading.Thread(
            target=self.ops.warm_up, name="whitened-warm-up", daemon=True
        )
        self._warmer.start()

    def close(self) -> None:
        """Stop jobs after their current chunk, checkpoint and close collections, unlock."""
        self.jobs.shutdown()
        if self._warmer is not None:
            self._warmer.join(timeout=60)
        self.catalog.close()
