"""Add (synchronously or as a background job), get, list and delete documents."""

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from index import Document, StoredDocument
from index.documents import MAX_ROW_OFFSET
from service.api.deps import EngineDep
from service.api.routes.collections import ERRORS
from service.schemas.documents import (
    DeletedOut,
    DocumentIn,
    DocumentOut,
    DocumentPage,
    DocumentsAdd,
    DocumentsIngest,
    IdsIn,
    WriteOut,
)
from service.schemas.jobs import JobAccepted, JobOut

router = APIRouter(prefix="/collections/{name}", tags=["documents"])


@router.post(
    "/documents",
    response_model=WriteOut,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
)
def add_documents(name: str, body: DocumentsAdd, engine: EngineDep) -> WriteOut:
    """Encode and store a batch in one transaction (all or nothing) and index it.

    The first batch of a collection without a kernel fits it on all documents stored. For more
    than a few hundred documents use /ingest, which answers at once and runs in the background.
    """
    written = engine.documents.add(name, _documents(body.documents), body.upsert, body.fit)
    result = written.result
    return WriteOut(
        collection=name,
        ids=written.ids,
        added=result.added,
        replaced=result.replaced,
        count=written.count,
        fitted=written.fitted,
        fit_error=written.fit_error,
        encode_seconds=result.encode_seconds,
        index_seconds=result.index_seconds,
    )


@router.post(
    "/ingest",
    response_model=JobAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=ERRORS,
)
def ingest(name: str, body: DocumentsIngest, engine: EngineDep) -> JobAccepted:
    """Check the batch, then store it in the background in committed chunks; poll /jobs/{id}.

    A collection without a kernel gets one after the last chunk, fitted on the whole corpus.
    """
    job, ids = engine.documents.submit_ingest(name, _documents(body.documents), body.upsert)
    return JobAccepted(job=JobOut.model_validate(job, from_attributes=True), ids=ids)


@router.get("/documents", response_model=DocumentPage, responses=ERRORS)
def list_documents(
    name: str,
    engine: EngineDep,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DocumentPage:
    """Documents in the order they were stored."""
    documents, count = engine.documents.page(name, offset, limit)
    return DocumentPage(
        documents=[_out(document) for document in documents],
        offset=offset,
        limit=limit,
        count=count,
    )


@router.get("/documents/{doc_id:path}", response_model=DocumentOut, responses=ERRORS)
def get_document(name: str, doc_id: str, engine: EngineDep) -> DocumentOut:
    """One document by id."""
    return _out(engine.documents.get(name, doc_id))


@router.delete("/documents/{doc_id:path}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
def delete_document(name: str, doc_id: str, engine: EngineDep) -> Response:
    """Delete one document by id."""
    engine.documents.delete(name, [doc_id])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/documents/delete", response_model=DeletedOut, responses=ERRORS)
def delete_documents(name: str, body: IdsIn, engine: EngineDep) -> DeletedOut:
    """Delete documents by id: all of them, or none if any id is unknown (404)."""
    deleted, count = engine.documents.delete(name, body.ids)
    return DeletedOut(deleted=deleted, count=count)


def _documents(documents: list[DocumentIn]) -> list[Document]:
    return [Document(text=d.text, id=d.id, metadata=d.metadata) for d in documents]


def _out(document: StoredDocument) -> DocumentOut:
    return DocumentOut(id=document.id, text=document.text, metadata=document.metadata)
