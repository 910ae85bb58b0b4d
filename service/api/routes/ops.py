"""Health, readiness and Prometheus metrics."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from service.api.deps import EngineDep
from service.schemas.ops import Health, Readiness
from service.telemetry import CONTENT_TYPE, render

router = APIRouter(tags=["operations"])
metrics_router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is alive and answering (never needs the API key)."""
    return Health()


@router.get(
    "/ready",
    response_model=Readiness,
    responses={
        503: {
            "model": Readiness,
            "description": "Starting, a model failed, or a collection cannot be opened",
        }
    },
)
async def ready(engine: EngineDep) -> JSONResponse:
    """200 once the models are loaded and every collection is open; 503 while starting, when a
    model failed, or when a collection cannot be opened (listed in `unavailable`: the operator
    must look). The other collections keep serving meanwhile."""
    state = Readiness(**engine.ops.readiness())
    return JSONResponse(state.model_dump(), status_code=200 if state.ready else 503)


@metrics_router.get("/metrics", response_class=PlainTextResponse)
def metrics(engine: EngineDep) -> PlainTextResponse:
    """Prometheus text format: requests and latency per route, documents, encode time, jobs."""
    return PlainTextResponse(render(engine.ops.metric_families()), media_type=CONTENT_TYPE)
