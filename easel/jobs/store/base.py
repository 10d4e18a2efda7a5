"""What the job manager and workers need from a store; SQLite and Redis provide it.

Four small seams: the records (`JobRecords`), the queue that hands jobs to workers with
at-least-once delivery (`JobQueue`), each job's append-only event log (`EventLog`), and
which workers are alive (`WorkerPresence`). A backend implements them all over one
connection (`JobStore`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, Required, TypedDict, Unpack

from easel.core.events import (
    JOB_EVENT_ADAPTER,
    ErrorBody,
    JobCancelled,
    JobEnd,
    JobEvent,
    JobFailed,
    JobQueued,
    JobStarted,
    JobSucceeded,
)
from easel.jobs.models import Job, JobStatus, Waiting


class QueueFull(Exception):
    def __init__(self, queued: int) -> None:
        super().__init__(f"{queued} jobs queued")
        self.queued = queued


class OwnerAtLimit(Exception):
    """The job's owner already has its most jobs queued or running (`max_active`)."""

    def __init__(self, active: int) -> None:
        super().__init__(f"{active} jobs queued or running")
        self.active = active


class IdempotencyConflict(Exception):
    """The idempotency key was used before, by the same owner, with another request body."""


class JobRecords(Protocol):
    async def get(self, job_id: str) -> Job | None: ...

    async def list_jobs(
        self, *, status: JobStatus | None, limit: int, cursor: str | None, owner: str | None = None
    ) -> tuple[list[Job], str | None]:
        """Newest first, of one `owner` when given (read from an index of its own, not
        filtered from all jobs); the cursor is opaque and continues where a page ended."""
        ...

    async def counts(self) -> dict[JobStatus, int]: ...

    async def queue_stats(self, *, live_since: float) -> QueueStats:
        """The queue at a glance, with the workers seen since `live_since`. Its cost grows
        with the live jobs (bounded by the queue limit), not with the finished ones."""
        ...

    async def sweep(self, *, older_than: float) -> list[Job]:
        """Delete terminal jobs finished before `older_than`; return them (for cleanup)."""
        ...


class JobQueue(Protocol):
    async def submit(self, job: Job, *, max_queued: int, max_active: int | None = None) -> Job:
        """Store and enqueue, with `QUEUED_EVENT` as the first event of its log. With an
        idempotency key its owner used before (keys are per owner): the existing job if the
        request hash matches, else IdempotencyConflict. OwnerAtLimit when the job's owner
        has `max_active` jobs queued or running already; QueueFull beyond `max_queued`.
        Every check and the write are one atomic step."""
        ...

    async def position(self, job_id: str) -> int | None:
        """Queued jobs ahead of this one (0 = next); None when it is not queued."""
        ...

    async def claim(self, worker_id: str, *, now: float) -> Job | None:
        """Take the oldest runnable queued job: running, attempts + 1, owned by the worker,
        with its `started_event` appended to its log in the same atomic step."""
        ...

    async def wait_for_work(self, timeout: float) -> None:
        """An idle worker's pause: returns after `timeout`, or sooner when there may be
        work: a job submitted, retried or recovered meanwhile (where the backend can tell),
        or a job backing off coming due (as the last empty `claim` saw the queue)."""
        ...

    async def heartbeat(self, job_id: str, worker_id: str, *, now: float) -> Job | None:
        """Extend the worker's hold; None when it no longer owns the job."""
        ...

    async def report(self, job_id: str, worker_id: str, **report: Unpack[Report]) -> bool:
        """Append the report's `events` in order and record its `progress` (step, total)
        and `waiting`, in one atomic step, if the worker still owns the job; False
        (nothing written) otherwise."""
        ...

    async def finish(self, job_id: str, worker_id: str, **ending: Unpack[Ending]) -> bool:
        """Terminal state (with `events` appended in order and the last `progress`), if
        the worker still owns the job; False otherwise."""
        ...

    async def finish_and_claim(
        self, job_id: str, worker_id: str, **ending: Unpack[Ending]
    ) -> tuple[bool, Job | None]:
        """`finish`, then `claim` for the same worker, in one atomic step: a busy worker
        gets its next job without another round trip. (finish's answer, the next job)."""
        ...

    async def retry(
        self, job_id: str, worker_id: str, *, now: float, not_before: float, error: ErrorBody
    ) -> Job | None:
        """Back to the queue after a transient failure, or failed once attempts are spent."""
        ...

    async def cancel(self, job_id: str, *, now: float) -> Job | None:
        """Queued: cancelled at once. Running: cancel requested (the worker stops it).
        Terminal: unchanged. None when unknown."""
        ...

    async def recover(self, *, now: float, visibility_timeout: float) -> list[Job]:
        """Jobs whose worker stopped heartbeating: requeued, or failed when their attempts
        are spent (cancelled when a cancel was requested). Returns them as they are now."""
        ...


class EventLog(Protocol):
    async def append(self, job_id: str, event: JobEvent) -> int:
        """Add an event; returns its id, increasing from 1 per job."""
        ...

    async def read(self, job_id: str, *, after: int) -> list[tuple[int, JobEvent]]:
        """The events after id `after`, with their ids, in order."""
        ...


class WorkerPresence(Protocol):
    """Workers leave no trace while idle, so each says it is alive now and then: the job
    manager counts the live ones from here, whichever process they run in."""

    async def worker_seen(self, worker_id: str, *, now: float, forget_before: float) -> None:
        """The worker is alive at `now`; workers last seen before `forget_before` are
        forgotten (dead ones, so that what is kept stays small)."""
        ...

    async def worker_gone(self, worker_id: str) -> None:
        """The worker stopped cleanly: no longer counted, without waiting to be forgotten."""
        ...


class JobStore(JobRecords, JobQueue, EventLog, WorkerPresence, Protocol):
    async def close(self) -> None: ...


@dataclass(frozen=True)
class QueueStats:
    """What `queue_stats` reads: the job manager's queue gauges (`easel.jobs.queue_metrics`)."""

    counts: dict[JobStatus, int]
    oldest_queued_at: float | None  # `created_at` of the oldest queued job; None: none queued
    retrying: int  # queued or running jobs past their first attempt
    live_workers: int


def is_retrying(status: JobStatus, attempts: int) -> bool:
    """A live job past its first attempt: back in the queue after a transient failure or a
    lost worker (a claim counts attempts), or running again. The SQLite store says the
    same in SQL."""
    if status is JobStatus.QUEUED:
        return attempts >= 1
    return status is JobStatus.RUNNING and attempts >= 2


class Report(TypedDict, total=False):
    """What a worker reports of a running job (`report`): events to log, the progress
    (step, total), and, when given, whether it waits out an outage (None: no longer)."""

    events: Required[Sequence[JobEvent]]
    progress: tuple[int, int] | None
    waiting: Waiting | None


def reported_fields(report: Report) -> dict[str, Any]:
    """The job fields a report sets (both stores use this)."""
    fields: dict[str, Any] = progress_fields(report.get("progress"))
    if "waiting" in report:
        fields["waiting"] = report["waiting"]
    return fields


class Ending(TypedDict, total=False):
    """How a worker ends a job (`finish`): a terminal status at `now`, its result or error,
    the events still to log before the end, and the last progress (step, total)."""

    status: Required[JobStatus]
    now: Required[float]
    result: dict[str, Any] | None
    error: ErrorBody | None
    events: Sequence[JobEvent]
    progress: tuple[int, int] | None


def ending_of(event: JobEnd, *, now: float) -> Ending:
    """How the terminal `event` ends its job at `now`: its status, result and error."""
    return {
        "status": JobStatus(event.status),
        "now": now,
        "result": event.result if isinstance(event, JobSucceeded) else None,
        "error": event.error if isinstance(event, JobFailed) else None,
    }


def finished_fields(ending: Ending) -> dict[str, Any]:
    """The job fields `finish` sets (both stores use this)."""
    status, now = ending["status"], float(ending["now"])
    if not status.is_terminal:
        raise ValueError(f"finish needs a terminal status, not {status}")
    return {
        "status": status,
        "finished_at": now,
        "updated_at": now,
        "result": ending.get("result"),
        "error": ending.get("error"),
        "waiting": None,
        **progress_fields(ending.get("progress")),
    }


def progress_fields(progress: tuple[int, int] | None) -> dict[str, int]:
    """The job fields a reported (step, total) sets; none when there is none."""
    if progress is None:
        return {}
    step, total = progress
    return {"progress_step": step, "progress_total": total}


_ENCODE = JOB_EVENT_ADAPTER.serializer.to_json

# ---- the events a store writes itself, in the step that changes the job ------------------
QUEUED_EVENT: Final = JobQueued()  # a submit's (frozen: one instance serves every job)
# The error of a job whose worker stopped heartbeating (`recover`).
WORKER_LOST: Final[ErrorBody] = {"code": "worker_lost", "message": "the worker stopped answering"}


def started_event(job: Job) -> JobStarted:
    """The event a claim appends: a state change and its event are one atomic step, so a
    reader never sees a running job without it (and it costs no extra round trip). The
    Redis claim script writes the same JSON."""
    return JobStarted(attempt=job.attempts)


def moved_event(job: Job) -> JobQueued | JobEnd:
    """The event for a job moved without its worker's word (requeued after a transient
    failure or a lost worker, failed once its attempts ran out, cancelled)."""
    if job.status is JobStatus.QUEUED:
        return JobQueued(retry=True, error=job.error)
    if job.status is JobStatus.FAILED:  # `requeued_or_failed` always gives it its error
        return JobFailed(error=job.error or {})
    if job.status is JobStatus.CANCELLED:
        return JobCancelled()
    raise ValueError(f"no event says how a job became {job.status}")


def encode_event(event: JobEvent) -> str:
    """An event as a store keeps it: compact JSON without null fields (the keys the log
    has always held, which the previous version's readers expect). The adapter's own
    serializer: what `model_dump_json` does, in half the time (it runs per event)."""
    return _ENCODE(event, exclude_none=True).decode()


def decode_event(text: str | bytes) -> JobEvent:
    """A stored event, as written by `encode_event` or by the previous version (plain
    `json.dumps` of the same fields)."""
    return JOB_EVENT_ADAPTER.validate_json(text)


def requeued_or_failed(job: Job, *, now: float, not_before: float, error: ErrorBody) -> Job:
    """Where a job goes after a transient failure (both stores use this)."""
    common: dict[str, Any] = {
        "worker_id": None,
        "heartbeat_at": None,
        "updated_at": now,
        "waiting": None,
    }
    error = dict(error)  # the job's own copy: `error` may be a shared constant (WORKER_LOST)
    if job.cancel_requested:
        return job.model_copy(update={**common, "status": JobStatus.CANCELLED, "finished_at": now})
    if job.attempts >= job.max_attempts:
        return job.model_copy(
            update={**common, "status": JobStatus.FAILED, "finished_at": now, "error": error}
        )
    return job.model_copy(
        update={**common, "status": JobStatus.QUEUED, "not_before": not_before, "error": error}
    )
