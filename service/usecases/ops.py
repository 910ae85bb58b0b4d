"""Operations: warm-up at start, readiness (/ready) and the Prometheus families (/metrics)."""

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from index import IndexError_
from service.telemetry import PREFIX, Family, Sample
from service.usecases.context import Context

logger = logging.getLogger("whitened_search")


@dataclass
class Startup:
    """What the background warm-up found: /ready reports it."""

    done: threading.Event = field(default_factory=threading.Event)
    models: dict[str, str] = field(default_factory=dict)  # model id -> "loaded" or the error


class Operations:
    """Opens collections and loads models in the background, and says how the server is."""

    def __init__(self, context: Context) -> None:
        self._context = context
        self.startup = Startup()

    def warm_up(self) -> None:
        """Open every collection and load every model they use; failures go to /ready."""
        catalog = self._context.catalog
        try:
            unavailable = catalog.open_all()
            for name, error in unavailable.items():
                logger.error("collection %s is unavailable: %s", name, error)
            models = [self._context.default_model_id()]
            for name in catalog.names():
                if name not in unavailable:
                    try:
                        models.append(catalog.get(name).manifest.model_id)
                    except IndexError_:
                        continue
            for model in dict.fromkeys(models):
                try:
                    _ = catalog.encoder(model).dimension  # loads the model
                    self.startup.models[model] = "loaded"
                except Exception as exc:  # any loader failure is reported by /ready
                    logger.error("model %s could not be loaded: %s", model, exc)
                    self.startup.models[model] = f"failed: {exc}"
        finally:
            self.startup.done.set()

    def readiness(self) -> dict[str, Any]:
        catalog = self._context.catalog
        done = self.startup.done.is_set()
        models = dict(self.startup.models)
        default_loaded = models.get(self._context.default_model_id()) == "loaded"
        unavailable = {  # a repaired or deleted one leaves it; /ready is open: no paths
            name: catalog.redact(reason) for name, reason in catalog.unavailable().items()
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
            "collections_open": len(catalog.names()) - len(unavailable),
            "unavailable": unavailable,
        }

    def metric_families(self) -> list[Family]:
        catalog = self._context.catalog
        documents, fitted = [], []
        for name in catalog.names():
            try:
                collection = catalog.get(name)
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
        jobs = [
            Sample(f"{PREFIX}_jobs", {"state": s}, n)
            for s, n in self._context.jobs.counts().items()
        ]
        return [
            *self._context.telemetry.families(),
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
