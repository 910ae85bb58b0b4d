"""Background jobs and their progress."""

from fastapi import APIRouter

from service.api.deps import EngineDep
from service.api.routes.collections import ERRORS
from service.schemas.jobs import JobList, JobOut

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("", response_model=JobList)
def list_jobs(engine: EngineDep) -> JobList:
    """Jobs since the service started, newest first."""
    return JobList(
        jobs=[JobOut.model_validate(j, from_attributes=True) for j in engine.jobs.list()]
    )


@router.get("/{job_id}", response_model=JobOut, responses={404: ERRORS[404]})
def get_job(job_id: str, engine: EngineDep) -> JobOut:
    """State (queued, running, done, failed), documents processed (committed) of total, timings."""
    return JobOut.model_validate(engine.jobs.get(job_id), from_attributes=True)
