"""The API router: operational routes open, everything else behind the optional API key."""

from typing import Any

from fastapi import APIRouter, Security

from service.api.routes import collections, documents, jobs, ops, search, tuning
from service.schemas.common import ErrorOut
from service.security import api_key_scheme, bearer_scheme

# What the middleware answers before any route runs (service.middleware, service.security).
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Malformed JSON or Content-Length"},
    413: {"model": ErrorOut, "description": "Body over the server's limit (not read)"},
}
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong API key (when the server has one)"},
}

api_router = APIRouter(responses=BODY_ERRORS)
api_router.include_router(ops.router)

# The schemes only document the key in OpenAPI; security.AuthMiddleware enforces it.
protected = APIRouter(
    dependencies=[Security(api_key_scheme), Security(bearer_scheme)], responses=AUTH_ERRORS
)
protected.include_router(ops.metrics_router)
protected.include_router(collections.router)
protected.include_router(documents.router)
protected.include_router(jobs.router)
protected.include_router(tuning.router)
protected.include_router(search.router)
api_router.include_router(protected)
