"""Bodies of the document routes: write, ingest, read, delete."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.schemas.common import Request


class DocumentIn(Request):
    id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        None, description="Your id; a random one is given when absent."
    )
    text: Annotated[str, StringConstraints(min_length=0)] = Field(
        description="Stored whole; the model reads its first 256 tokens (the rest is truncated). "
        "May be empty: it is encoded like any text."
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON object, nested at most 32 levels and at most 64 KiB as JSON; queries "
        "can filter on its keys.",
    )


_DOCUMENTS_EXAMPLE = {
    "documents": [
        {"id": "a1", "text": "A man is playing a guitar.", "metadata": {"lang": "en"}},
        {"id": "a2", "text": "A woman is slicing an onion.", "metadata": {"lang": "en"}},
    ],
    "upsert": False,
}


class DocumentsAdd(Request):
    model_config = ConfigDict(json_schema_extra={"examples": [_DOCUMENTS_EXAMPLE]})

    documents: list[DocumentIn] = Field(min_length=1)
    upsert: bool = Field(False, description="Replace documents whose id exists (else 409).")
    fit: bool = Field(
        True,
        description="Fit the kernel on all documents when the collection has none yet. Send "
        "false for every chunk of a large load split by the client, then POST /fit once.",
    )


class DocumentsIngest(Request):
    model_config = ConfigDict(json_schema_extra={"examples": [_DOCUMENTS_EXAMPLE]})

    documents: list[DocumentIn] = Field(min_length=1)
    upsert: bool = Field(False, description="Replace documents whose id exists (else 409).")


class WriteOut(BaseModel):
    collection: str
    ids: list[str] = Field(description="Ids of the documents written, in order.")
    added: int
    replaced: int
    count: int = Field(description="Documents in the collection after the write.")
    fitted: bool = Field(description="Whether this write fitted the collection's kernel.")
    fit_error: str | None = Field(
        None, description="Why the kernel could not be fitted yet (documents are stored)."
    )
    encode_seconds: float
    index_seconds: float


class DocumentOut(BaseModel):
    id: str
    text: str
    metadata: dict[str, Any]


class DocumentPage(BaseModel):
    documents: list[DocumentOut]
    offset: int
    limit: int
    count: int


class IdsIn(Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"ids": ["a1", "a2"]}]})

    ids: list[Annotated[str, StringConstraints(min_length=1)]] = Field(min_length=1)


class DeletedOut(BaseModel):
    deleted: int
    count: int
