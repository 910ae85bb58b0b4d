"""Bodies of the job routes: a background job (ingest, tune, report) and its progress."""

from typing import Any, Literal

from pydantic import BaseModel, Field


class JobOut(BaseModel):
    id: str
    kind: str
    collection: str
    state: Literal["queued", "running", "done", "failed"]
    total: int
    processed: int = Field(
        description="Ingest: documents committed so far (they survive a crash). Tune and "
        "report: 1 once the answer is in `result`, of total 1."
    )
    added: int
    replaced: int
    fitted: bool
    error: str | None
    fit_error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    encode_seconds: float
    index_seconds: float
    fit_seconds: float
    result: dict[str, Any] | None = Field(
        None, description="Tune and report jobs: the answer the synchronous route gives, once done."
    )


class JobAccepted(BaseModel):
    job: JobOut
    ids: list[str] = Field(description="Ids of the documents queued, in order.")


class JobList(BaseModel):
    jobs: list[JobOut]
