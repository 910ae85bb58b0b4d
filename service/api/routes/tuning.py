"""Refit a collection's kernel, and tune β, γ, k on labelled data."""

from fastapi import APIRouter

from service.api.deps import EngineDep
from service.api.routes.collections import ERRORS
from service.schemas import (
    CollectionInfo,
    FitIn,
    FitOut,
    TuneIn,
    TuneOut,
    TuningPointOut,
    relevance,
)

router = APIRouter(prefix="/collections/{name}", tags=["kernel"])


@router.post("/fit", response_model=FitOut, responses=ERRORS)
def fit(name: str, body: FitIn, engine: EngineDep) -> FitOut:
    """Refit β, γ, k or the index spec from the stored raw vectors (no re-encoding).

    Queries keep being answered by the old kernel and index until the new ones are saved.
    """
    info, seconds = engine.fit(
        name, body.beta, body.gamma, body.k, body.index_spec, body.rescore, body.rescore_k
    )
    return FitOut(collection=CollectionInfo(**info), fit_seconds=seconds)


@router.post("/tune", response_model=TuneOut, responses=ERRORS)
def tune(name: str, body: TuneIn, engine: EngineDep) -> TuneOut:
    """Grid-search β, γ and k on labelled pairs (Spearman) or queries (nDCG@k_eval).

    The kernel statistics are the collection's (its corpus); the labels only score the grid.
    With `apply` the collection is refitted with the best point.
    """
    grid = {"betas": body.betas, "gammas": body.gammas, "ks": body.ks, "max_k": body.max_k}
    if body.pairs is not None:
        pairs = [(p.text1, p.text2, p.score) for p in body.pairs]
        tuned = engine.tune(name, pairs=pairs, grid=grid, apply=body.apply)
    else:
        queries = [(q.text, relevance(q)) for q in body.queries or []]
        tuned = engine.tune(name, queries=queries, grid=grid, k_eval=body.k_eval, apply=body.apply)
    result = tuned.result
    return TuneOut(
        metric=result.metric,
        best=TuningPointOut.model_validate(result.best, from_attributes=True),
        points=[TuningPointOut.model_validate(p, from_attributes=True) for p in result.points],
        skipped=result.skipped,
        table=result.table(),
        applied=tuned.applied,
        collection=None if tuned.info is None else CollectionInfo(**tuned.info),
        encode_seconds=tuned.encode_seconds,
        tune_seconds=tuned.tune_seconds,
        fit_seconds=tuned.fit_seconds,
    )
