"""Create, list, describe and delete collections; which models a client may name."""

from collections.abc import Mapping
from typing import Any

from index import DEFAULT_MODEL_ID, IndexError_, InvalidInput
from index.catalog import Stored
from service.usecases.context import Context


class Collections:
    """Collection lifecycle over the catalog, with the server's defaults for new ones."""

    def __init__(self, context: Context) -> None:
        self._context = context

    def create(
        self,
        name: str,
        model: str | None = None,
        given: Mapping[str, Any] | None = None,
        shards: int | None = None,
    ) -> dict[str, Any]:
        """Create a collection (split into `shards` when given); settings not `given` come from
        the server's defaults (a default k above the model's dimension becomes the dimension)."""
        catalog = self._context.catalog
        if model is not None:
            self._check_model_allowed(model)
        try:
            dimension = catalog.encoder(model).dimension  # loads it
        except Exception as exc:  # sentence-transformers raises many kinds for a bad model
            raise InvalidInput(f"model {model!r} could not be loaded: {exc}") from exc
        self._context.check_candidates((given or {}).get("candidates"))
        settings = self._context.settings.collection_settings(dimension, given)
        return catalog.create(name, model, settings, shards).describe()

    def _check_model_allowed(self, model: str) -> None:
        settings = self._context.settings
        default = self._context.default_model_id()
        allowed = {default, DEFAULT_MODEL_ID, *settings.allowed_models}
        if settings.model is not None:
            allowed.add(settings.model)
        if model not in allowed:
            raise InvalidInput(
                f"model {model!r} is not enabled on this server; leave model out for the default "
                f"({default}), or ask the operator to add it to WHITENED_SEARCH_ALLOWED_MODELS"
            )

    def get(self, name: str) -> Stored:
        return self._context.catalog.get(name)

    def list(self) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Summaries of the open collections, and why each unavailable one is (paths redacted)."""
        catalog = self._context.catalog
        summaries, unavailable = [], {}
        for name in catalog.names():
            try:
                collection = catalog.get(name)
            except IndexError_ as exc:
                unavailable[name] = catalog.redact(str(exc))
                continue
            summaries.append(_summary(collection))
        return summaries, unavailable

    def describe(self, name: str) -> dict[str, Any]:
        return self._context.catalog.get(name).describe()

    def delete(self, name: str) -> None:
        self._context.catalog.delete(name)


def _summary(collection: Stored) -> dict[str, Any]:
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
