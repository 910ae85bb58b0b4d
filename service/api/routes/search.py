"""Query a collection, embed texts, and score the similarity of text pairs."""

from typing import Any

from fastapi import APIRouter, Response, status

from service.api.deps import EngineDep
from service.api.routes.collections import ERRORS
from service.engine import Engine, Progress
from service.schemas import (
    EmbedIn,
    EmbedOut,
    HitOut,
    JobOut,
    QueryIn,
    QueryOut,
    QueryResult,
    ReportIn,
    ReportOut,
    ReportRow,
    SimilarityIn,
    SimilarityOut,
    relevance,
)

router = APIRouter(tags=["search"])


@router.post("/collections/{name}/query", response_model=QueryOut, responses=ERRORS)
def query(name: str, body: QueryIn, engine: EngineDep, response: Response) -> QueryOut:
    """Nearest documents by cosine through the collection's kernel, best first, per query.

    The Server-Timing header tells the encode and search milliseconds.
    """
    texts = body.all_texts
    answer, encode_seconds, search_seconds = engine.query(
        name, texts, body.top_k, body.filter, body.overrides()
    )
    response.headers["Server-Timing"] = (
        f"encode;dur={1000 * encode_seconds:.1f}, search;dur={1000 * search_seconds:.1f}"
    )
    return QueryOut(
        fitted_at=answer.fitted_at,
        results=[
            QueryResult(
                query=text,
                hits=[
                    HitOut(
                        id=h.id,
                        score=h.score,
                        score_kind=h.score_kind,
                        text=h.text,
                        metadata=h.metadata,
                    )
                    for h in found
                ],
            )
            for text, found in zip(texts, answer.hits, strict=True)
        ],
    )


@router.post("/collections/{name}/embed", response_model=EmbedOut, responses=ERRORS)
def embed(name: str, body: EmbedIn, engine: EngineDep) -> EmbedOut:
    """Vectors of texts: raw (the collection's model, d dims) or through its kernel (k dims)."""
    vectors = engine.embed(name, body.texts, body.space)
    return EmbedOut(space=body.space, dimension=vectors.shape[1], vectors=vectors.tolist())


@router.post("/similarity", response_model=SimilarityOut, responses=ERRORS)
def similarity(body: SimilarityIn, engine: EngineDep) -> SimilarityOut:
    """Cosine of each text pair: through a collection's kernel, or of the default model's raw
    vectors when no collection is named."""
    scores = engine.similarity(
        [(p.text1, p.text2) for p in body.pairs], body.collection, body.codes
    )
    space = "raw" if body.collection is None else "index" if body.codes else "kernel"
    return SimilarityOut(
        space=space,
        collection=body.collection,
        scores=scores.tolist(),
    )


@router.post("/collections/{name}/report", response_model=ReportOut, responses=ERRORS)
def report(name: str, body: ReportIn, engine: EngineDep) -> ReportOut:
    return _report(name, body, engine)


@router.post(
    "/collections/{name}/report/jobs",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=ERRORS,
)
def report_job(name: str, body: ReportIn, engine: EngineDep) -> JobOut:
    """`/report` as a background job: poll GET /jobs/{id}; its `result` is /report's answer."""
    job = engine.background(
        "report", name, lambda progress: _report(name, body, engine, progress).model_dump()
    )
    return JobOut.model_validate(job, from_attributes=True)


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
    result, seconds = engine.report(
        name,
        ks=body.ks,
        specs=body.specs,
        rescore=body.rescore,
        n_queries=body.n_queries,
        candidates=body.candidates,
        progress=progress,
        **labels,
    )
    rescores = engine.describe(name)["settings"]["rescore"] != "off"
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
