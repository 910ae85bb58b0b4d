"""Health, readiness and Prometheus metrics."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from service.api.deps import EngineDep
from service.schemas import Health, Readiness
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
    responses={503: {"model": Readiness, "description": "Starting, or the model failed"}},
)
async def ready(engine: EngineDep) -> JSONResponse:
    """200 once the model is loaded and the collections are open (broken ones are listed in
    `unavailable`, and answer 503 themselves); 503 while starting or if the model failed."""
    state = Readiness(**engine.readiness())
    return JSONResponse(state.model_dump(), status_code=200 if state.ready else 503)


@metrics_router.get("/metrics", response_class=PlainTextResponse)
def metrics(engine: EngineDep) -> PlainTextResponse:
    """Prometheus text format: requests and latency per route, documents, encode time, jobs."""
    return PlainTextResponse(render(engine.metric_families()), media_type=CONTENT_TYPE)
