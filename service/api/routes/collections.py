"""Create, list, describe and delete collections."""

from fastapi import APIRouter, Response, status

from service.api.deps import EngineDep
from service.schemas.collections import (
    CollectionCreate,
    CollectionInfo,
    CollectionList,
    CollectionSummary,
)
from service.schemas.common import ErrorOut

router = APIRouter(prefix="/collections", tags=["collections"])

ERRORS = {
    404: {"model": ErrorOut, "description": "No such collection"},
    409: {"model": ErrorOut, "description": "Conflict (exists, not fitted yet, other model)"},
    422: {"model": ErrorOut, "description": "Invalid request: the detail says what to change"},
    503: {"model": ErrorOut, "description": "The collection's files are broken"},
    507: {"model": ErrorOut, "description": "The disk refused a write: nothing was stored"},
}


@router.post(
    "", response_model=CollectionInfo, status_code=status.HTTP_201_CREATED, responses=ERRORS
)
def create_collection(body: CollectionCreate, engine: EngineDep) -> CollectionInfo:
    """Create an empty collection; β, γ, k and index spec default to the server's settings."""
    info = engine.collections.create(body.name, body.model, body.settings(), body.shards)
    return CollectionInfo(**info)


@router.get("", response_model=CollectionList)
def list_collections(engine: EngineDep) -> CollectionList:
    """Every collection, and those that failed to open with the reason."""
    summaries, unavailable = engine.collections.list()
    return CollectionList(
        collections=[CollectionSummary(**summary) for summary in summaries],
        unavailable=unavailable,
    )


@router.get("/{name}", response_model=CollectionInfo, responses=ERRORS)
def describe_collection(name: str, engine: EngineDep) -> CollectionInfo:
    """Counts, model, d, β, γ, k, index spec, bytes per vector, explained energy, fitted_at."""
    return CollectionInfo(**engine.collections.describe(name))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
def delete_collection(name: str, engine: EngineDep) -> Response:
    """Delete a collection and all its files."""
    engine.collections.delete(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
