"""Background jobs: long ingests run in one worker thread, in committed chunks, with progress;
tune and report run there too, their answer kept with the job (`result`).

A job's `processed` counts only documents whose chunk was committed: those survive a crash of the
process at any moment. Jobs live in memory; a restart forgets them (their documents stay).
"""

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from index.errors import IndexError_, NotFound

logger = logging.getLogger("whitened_search.jobs")


class JobCancelled(Exception):
    """The service is shutting down: the job stops between two chunks."""


@dataclass
class Job:
    """The public state of one job; change it only through JobRegistry's lock."""

    id: str
    kind: str
    collection: str
    total: int
    state: str = "queued"
    processed: int = 0
    added: int = 0
    replaced: int = 0
    fitted: bool = False
    error: str | None = None
    fit_error: str | None = None
    created_at: str = field(default_factory=lambda: _now())
    started_at: str | None = None
    finished_at: str | None = None
    encode_seconds: float = 0.0
    index_seconds: float = 0.0
    fit_seconds: float = 0.0
    result: dict[str, Any] | None = None
    """What a tune or report job answers (the synchronous route's body), once done."""


Work = Callable[["JobHandle"], None]


class JobHandle:
    """What a running job's work function sees: progress reporting and the stop signal."""

    def __init__(self, registry: "JobRegistry", job: Job) -> None:
        self._registry = registry
        self.job = job

    def check_stop(self) -> None:
        if self._registry.stopping.is_set():
            raise JobCancelled(
                "the service shut down before the job finished; the documents "
                "processed so far are stored, submit the rest again"
            )

    def update(self, **changes: Any) -> None:
        """Set fields; numeric ones ending in _add are added (processed_add=256)."""
        with self._registry.lock:
            for key, value in changes.items():
                if key.endswith("_add"):
                    name = key.removesuffix("_add")
                    setattr(self.job, name, getattr(self.job, name) + value)
                else:
                    setattr(self.job, key, value)


class JobRegistry:
    """Runs jobs one at a time in a worker thread, keeps the last `keep` of them.

    One worker is enough: encoding already uses every core, and writers of one collection are
    serialised by the collection anyway. Queries never wait for jobs.
    """

    def __init__(self, keep: int = 1000, redact: Callable[[str], str] = str) -> None:
        self.keep = keep
        self.redact = redact
        """What a failed job's error says to clients (the log keeps the whole message)."""
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whitened-job")

    def submit(self, kind: str, collection: str, total: int, work: Work) -> Job:
        job = Job(id=uuid.uuid4().hex, kind=kind, collection=collection, total=total)
        with self.lock:
            self._jobs[job.id] = job
            self._forget_old()
            snapshot = Job(**asdict(job))
        self._executor.submit(self._run, job, work)
        logger.info("job %s queued: %s (%d) on %s", job.id, kind, total, collection)
        return snapshot

    def get(self, job_id: str) -> Job:
        with self.lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFound(f"no job with id {job_id!r} (jobs are forgotten on restart)")
            return Job(**asdict(job))

    def list(self) -> list[Job]:
        with self.lock:
            return [Job(**asdict(job)) for job in reversed(self._jobs.values())]

    def active_collections(self) -> set[str]:
        """Collections with a queued or running job."""
        with self.lock:
            return {j.collection for j in self._jobs.values() if j.state in ("queued", "running")}

    def counts(self) -> dict[str, int]:
        with self.lock:
            counts = dict.fromkeys(("queued", "running", "done", "failed"), 0)
            for job in self._jobs.values():
                counts[job.state] += 1
            return counts

    def shutdown(self) -> None:
        """Stop after the current chunk, fail queued jobs, wait for the worker."""
        self.stopping.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self.lock:
            for job in self._jobs.values():
                if job.state in ("queued", "running"):
                    job.state = "failed"
                    job.error = "the service shut down before the job started"
                    job.finished_at = _now()

    def _run(self, job: Job, work: Work) -> None:
        handle = JobHandle(self, job)
        try:
            handle.check_stop()
            handle.update(state="running", started_at=_now())
            started = time.perf_counter()
            work(handle)
        except Exception as exc:  # a job's failure is its state, not the worker's death
            if isinstance(exc, JobCancelled | IndexError_):
                logger.warning("job %s failed: %s", job.id, exc)
            else:
                logger.exception("job %s failed unexpectedly", job.id)
            error = self.redact(str(exc)) or type(exc).__name__
            handle.update(state="failed", error=error, finished_at=_now())
            return
        handle.update(state="done", finished_at=_now())
        logger.info("job %s done in %.1f s", job.id, time.perf_counter() - started)

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.state in ("done", "failed")]
        for job_id in finished[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[job_id]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
