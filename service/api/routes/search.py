"""Query a collection, embed texts, and score the similarity of text pairs."""

from fastapi import APIRouter, Response

from service.api.deps import EngineDep
from service.api.routes.collections import ERRORS
from service.schemas.search import (
    EmbedIn,
    EmbedOut,
    HitOut,
    QueryIn,
    QueryOut,
    QueryResult,
    SimilarityIn,
    SimilarityOut,
)

router = APIRouter(tags=["search"])


@router.post("/collections/{name}/query", response_model=QueryOut, responses=ERRORS)
def query(name: str, body: QueryIn, engine: EngineDep, response: Response) -> QueryOut:
    """Nearest documents by cosine through the collection's kernel, best first, per query.

    The Server-Timing header tells the encode and search milliseconds.
    """
    texts = body.all_texts
    answer, encode_seconds, search_seconds = engine.search.query(
        name, texts, body.top_k, body.filter, body.overrides()
    )
    response.headers["Server-Timing"] = (
        f"encode;dur={1000 * encode_seconds:.1f}, search;dur={1000 * search_seconds:.1f}"
    )
    return QueryOut(
        fitted_at=answer.fitted_at,
        partial=bool(answer.missing_shards),
        missing_shards=list(answer.missing_shards),
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
    vectors = engine.search.embed(name, body.texts, body.space)
    return EmbedOut(space=body.space, dimension=vectors.shape[1], vectors=vectors.tolist())


@router.post("/similarity", response_model=SimilarityOut, responses=ERRORS)
def similarity(body: SimilarityIn, engine: EngineDep) -> SimilarityOut:
    """Cosine of each text pair: through a collection's kernel, or of the default model's raw
    vectors when no collection is named."""
    scores = engine.search.similarity(
        [(p.text1, p.text2) for p in body.pairs], body.collection, body.codes
    )
    space = "raw" if body.collection is None else "index" if body.codes else "kernel"
    return SimilarityOut(
        space=space,
        collection=body.collection,
        scores=scores.tolist(),
    )
