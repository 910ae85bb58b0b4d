"""Refit a collection's kernel, tune β, γ, k on labelled data, and report what compression costs."""

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel

from index.tuning_results import ServedPoint
from service.api.deps import EngineDep
from service.api.routes.collections import ERRORS
from service.engine import Engine
from service.schemas.collections import CollectionInfo
from service.schemas.jobs import JobOut
from service.schemas.tuning import (
    FitIn,
    FitOut,
    LabelledPair,
    ReportIn,
    ReportOut,
    ReportRow,
    ServedPointOut,
    TuneIn,
    TuneOut,
    TuningPointOut,
    relevance,
)
from service.usecases.context import Progress

router = APIRouter(prefix="/collections/{name}", tags=["kernel"])


@router.post("/fit", response_model=FitOut, responses=ERRORS)
def fit(name: str, body: FitIn, engine: EngineDep) -> FitOut:
    """Refit β, γ, k or the index spec from the stored raw vectors (no re-encoding).

    Queries keep being answered by the old kernel and index until the new ones are saved.
    """
    info, seconds = engine.tuning.fit(name, body.settings())
    return FitOut(collection=CollectionInfo(**info), fit_seconds=seconds)


@router.post("/tune", response_model=TuneOut, responses=ERRORS)
def tune(name: str, body: TuneIn, engine: EngineDep) -> TuneOut:
    return _tune(name, body, engine)


@router.post(
    "/tune/jobs", response_model=JobOut, status_code=status.HTTP_202_ACCEPTED, responses=ERRORS
)
def tune_job(name: str, body: TuneIn, engine: EngineDep) -> JobOut:
    """`/tune` as a background job: poll GET /jobs/{id}; its `result` is /tune's answer."""
    return _job(
        engine,
        "tune",
        name,
        lambda progress: _tune(name, body, engine, progress),
        body.candidates,
    )


def _tune(name: str, body: TuneIn, engine: Engine, progress: Progress | None = None) -> TuneOut:
    """Choose β, γ, k (and, for queries, index spec and re-scoring) on labelled pairs (Spearman)
    or queries (nDCG@k_eval) by the pipeline the server would serve.

    The kernel statistics are the collection's (its corpus); the labels only score. The choice
    is made on the train examples; `validation` (or a seeded `held_out` fraction) is scored, never
    chosen on, beside raw cosine. With `apply` the collection serves the chosen pipeline, so
    querying it with the held-out examples gives the held-out score.
    """
    grid = {"betas": body.betas, "gammas": body.gammas, "ks": body.ks, "max_k": body.max_k}
    common = {"grid": grid, "held_out": body.held_out, "apply": body.apply, "progress": progress}
    validation = body.validation
    if body.pairs is not None:
        tuned = engine.tuning.tune(
            name,
            pairs=[_pair(p) for p in body.pairs],
            validation=None if validation is None else [_pair(p) for p in validation.pairs or []],
            **common,
        )
    else:
        tuned = engine.tuning.tune(
            name,
            queries=[(q.text, relevance(q)) for q in body.queries or []],
            validation=None
            if validation is None
            else [(q.text, relevance(q)) for q in validation.queries or []],
            specs=body.specs,
            spaces=body.spaces,
            candidates=body.candidates,
            k_eval=body.k_eval,
            **common,
        )
    result = tuned.result
    sweep = result.sweep

    def served(point: ServedPoint) -> ServedPointOut:
        return ServedPointOut.model_validate(point, from_attributes=True)

    return TuneOut(
        metric=result.metric,
        best=TuningPointOut.model_validate(sweep.best, from_attributes=True),
        points=[TuningPointOut.model_validate(p, from_attributes=True) for p in sweep.points],
        skipped=sweep.skipped,
        table=sweep.table(),
        chosen=served(result.chosen),
        held_out_raw=result.raw_held_out,
        pipelines=[served(p) for p in result.pipelines],
        pareto=[served(p) for p in result.pareto()],
        n_train=result.n_train,
        n_held_out=result.n_held_out,
        applied=tuned.applied,
        collection=None if tuned.info is None else CollectionInfo(**tuned.info),
        encode_seconds=tuned.encode_seconds,
        tune_seconds=tuned.tune_seconds,
        fit_seconds=tuned.fit_seconds,
    )


@router.post("/report", response_model=ReportOut, responses=ERRORS)
def report(name: str, body: ReportIn, engine: EngineDep) -> ReportOut:
    return _report(name, body, engine)


@router.post(
    "/report/jobs", response_model=JobOut, status_code=status.HTTP_202_ACCEPTED, responses=ERRORS
)
def report_job(name: str, body: ReportIn, engine: EngineDep) -> JobOut:
    """`/report` as a background job: poll GET /jobs/{id}; its `result` is /report's answer."""
    return _job(
        engine,
        "report",
        name,
        lambda progress: _report(name, body, engine, progress),
        [body.candidates],
    )


def _report(
    name: str, body: ReportIn, engine: Engine, progress: Progress | None = None
) -> ReportOut:
    """What each (k, index spec, re-scoring) would cost in bytes and keep in quality.

    Each setting's index is built beside the collection (nothing changes in it) and measured:
    recall@10 against exact search on the raw vectors, for documents drawn as queries (or the
    queries given), median latency of one query, and nDCG@10 or Spearman with labels.
    """
    labels: dict[str, Any] = {}
    if body.pairs is not None:
        labels["pairs"] = [(p.text1, p.text2, p.score) for p in body.pairs]
    elif body.queries is not None:
        labels["queries"] = [(q.text, relevance(q)) for q in body.queries]
    result, seconds = engine.tuning.report(
        name,
        ks=body.ks,
        specs=body.specs,
        rescore=body.rescore,
        n_queries=body.n_queries,
        candidates=body.candidates,
        progress=progress,
        **labels,
    )
    rescores = engine.collections.describe(name)["settings"]["rescore"] != "off"
    smallest = result.smallest(rescores, body.target_recall)
    return ReportOut(
        collection=name,
        n_documents=result.n_documents,
        n_queries=result.n_queries,
        metric=result.metric_name,
        rows=[ReportRow.model_validate(row, from_attributes=True) for row in result.rows],
        smallest=None
        if smallest is None
        else ReportRow.model_validate(smallest, from_attributes=True),
        skipped_ks=list(result.skipped_ks),
        table=result.table(),
        seconds=seconds,
    )


def _job(
    engine: Engine,
    kind: str,
    name: str,
    answer: Callable[[Progress], BaseModel],
    candidates: Sequence[int | None],
) -> JobOut:
    """Run a route's `answer` as a background job whose result is the answer's JSON."""
    job = engine.tuning.background(
        kind, name, lambda progress: answer(progress).model_dump(), candidates
    )
    return JobOut.model_validate(job, from_attributes=True)


def _pair(pair: LabelledPair) -> tuple[str, str, float]:
    return (pair.text1, pair.text2, pair.score)
