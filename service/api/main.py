"""The API router: operational routes open, everything else behind the optional API key."""

from fastapi import APIRouter, Security

from service.api.routes import collections, documents, jobs, ops, search, tuning
from service.security import api_key_scheme, bearer_scheme

api_router = APIRouter()
api_router.include_router(ops.router)

# The schemes only document the key in OpenAPI; security.AuthMiddleware enforces it.
protected = APIRouter(dependencies=[Security(api_key_scheme), Security(bearer_scheme)])
protected.include_router(ops.metrics_router)
protected.include_router(collections.router)
protected.include_router(documents.router)
protected.include_router(jobs.router)
protected.include_router(tuning.router)
protected.include_router(search.router)
api_router.include_router(protected)
