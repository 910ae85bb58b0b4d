"""The application factory: `create_app(settings)` returns the FastAPI app of one data directory."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from index.catalog import IN_PROCESS, Placement
from service import errors
from service.api import docs
from service.api.main import api_router
from service.config import ServerSettings
from service.engine import Engine
from service.middleware import BodyLimitMiddleware
from service.security import ACCESS_LOGGER, AuthMiddleware, QueryStringRedactor
from service.telemetry import MetricsMiddleware, Telemetry

logger = logging.getLogger("whitened_search")

DESCRIPTION = """
Semantic search whose FAISS index is compressed by a whitening kernel
x̃ = normalise(((x − β·μ) · U · Λ^(−γ/2))[:k]), fitted on each collection's own corpus.

Create a collection, add documents (small batches synchronously, large ones as background jobs),
then query it. `fit` refits β, γ, k from the stored vectors; `tune` picks them on labelled data.
When the server has an API key, send it as `X-API-Key` or `Authorization: Bearer`.
"""

OPEN_PATHS = ("/health", "/ready")


def create_app(
    settings: ServerSettings | None = None, placement: Placement = IN_PROCESS
) -> FastAPI:
    """Build the app; its lifespan opens the data directory and loads the model in the background.

    Args:
        settings: the service settings (default: read from WHITENED_SEARCH_* variables).
        placement: where models run and shards open (see service.engine.Engine).
    """
    settings = settings or ServerSettings()
    telemetry = Telemetry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redactor = QueryStringRedactor()
        logging.getLogger(ACCESS_LOGGER).addFilter(redactor)  # after uvicorn set up its logging
        engine = await run_in_threadpool(Engine, settings, telemetry, placement)
        app.state.engine = engine
        engine.start()
        logger.info("serving data directory %s", engine.catalog.root)
        try:
            yield
        finally:
            await run_in_threadpool(engine.close)
            logging.getLogger(ACCESS_LOGGER).removeFilter(redactor)

    app = FastAPI(
        title="whitened-search",
        summary="Semantic retrieval with a whitening-compressed vector index",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # service.api.docs serves the pages with local assets
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs else None,
    )
    app.state.settings = settings
    app.state.telemetry = telemetry
    errors.install(app)
    app.include_router(api_router)
    docs_paths = docs.install(app) if settings.docs else frozenset()

    # Added innermost first: metrics see every answer, CORS answers preflights before auth,
    # auth refuses before the body is read.
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, read_timeout=settings.read_timeout
    )
    if settings.api_key is not None:
        app.add_middleware(
            AuthMiddleware,
            api_key=settings.api_key.get_secret_value(),
            open_paths=frozenset(OPEN_PATHS) | docs_paths,
        )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Content-Type", "Authorization", "X-API-Key"],
        )
    app.add_middleware(MetricsMiddleware, telemetry=telemetry)
    return app
