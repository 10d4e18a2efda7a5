"""JobManager: what the job endpoints do, over any JobStore."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from easel.core.body import validate_fields
from easel.core.errors import Conflict, EaselError, InvalidInput, NotFound, TooManyRequests
from easel.core.events import JobEvent, JobSucceeded, is_terminal
from easel.core.generation_api import GenerationRequest, OutputKind
from easel.core.identity import Caller, current_caller
from easel.core.image_links import ImageLinks
from easel.core.image_store import ImageStore
from easel.core.images import OutputFormat
from easel.core.request_context import task_id_var
from easel.jobs import access
from easel.jobs.cancelling import stop_if_cancelled
from easel.jobs.context import submitted_trace
from easel.jobs.eta import Durations, queued_eta, remaining
from easel.jobs.models import Job, JobStatus, Waiting, WebhookSpec
from easel.jobs.store.base import (
    IdempotencyConflict,
    JobStore,
    OwnerAtLimit,
    QueueFull,
    moved_event,
)
from easel.jobs.webhooks import Webhooks

# The ETA's sample: the most recent finished jobs, read again at most once a second; and
# the most running jobs it looks at.
_RECENT_JOBS = 50
_DURATIONS_TTL_S = 1.0
_MOST_RUNNING = 500


@dataclass(frozen=True)
class JobLimits:
    max_queued: int
    max_attempts: int
    timeout_s: float
    concurrency: int  # workers x concurrency, for the ETA


class JobOptions(BaseModel):
    """Job-level fields of an async request, beside the generation request's own."""

    model_config = ConfigDict(extra="forbid")

    webhook: WebhookSpec | None = None
    timeout: float | None = Field(None, gt=0, description="Seconds before the job fails.")


JOB_FIELDS = set(JobOptions.model_fields)

# Raises the refusal of a generation request (validation.py asks the generation service).
RequestCheck = Callable[[dict[str, Any]], Awaitable[None]]


JOB_VIEW_EXAMPLE: dict[str, Any] = {
    "task_id": "0f3c9a7d2b6e4f1a8c5d7e9b0a1c2d3e",
    "owner": "studio-app",
    "status": "running",
    "progress": {"step": 7, "total": 20},
    "queue_position": None,
    "eta_s": 4.2,
    "attempts": 1,
    "timestamps": {"created_at": 1764633600.0, "started_at": 1764633601.5, "finished_at": None},
    "error": None,
}


class Progress(BaseModel):
    step: int
    total: int


class Timestamps(BaseModel):
    created_at: float
    started_at: float | None
    finished_at: float | None


class JobView(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [JOB_VIEW_EXAMPLE]})

    task_id: str
    owner: str = Field(
        description="The name of the API key that submitted it (`anonymous` without keys); "
        "only that key, or an admin key, sees the job."
    )
    status: JobStatus
    progress: Progress
    queue_position: int | None
    eta_s: float | None = Field(None, description="Estimated seconds until it finishes.")
    attempts: int
    timestamps: Timestamps
    waiting: Waiting | None = Field(
        None,
        description="Running, but waiting for the generation service (or its engine) to be "
        "back: since when, and the failure that started the wait. No attempt is used up.",
    )
    error: dict[str, Any] | None = None


class JobList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"jobs": [JOB_VIEW_EXAMPLE], "next_cursor": None}]}
    )

    jobs: list[JobView]
    next_cursor: str | None


class JobFailedError(EaselError):
    """The result of a failed job: its error, in `details`."""

    status, code = 409, "job_failed"


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def new_task_id() -> str:
    """32 hex digits, all 128 bits from the OS's CSPRNG (a uuid4 keeps only 122): an id
    is not guessable, though ownership, not secrecy, is what guards a job."""
    return secrets.token_hex(16)


class JobManager:
    def __init__(
        self,
        *,
        store: JobStore,
        results: ImageStore,
        limits: JobLimits,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.1,
        webhooks: Webhooks | None = None,
        check: RequestCheck | None = None,
        links: ImageLinks | None = None,
    ) -> None:
        self.store = store
        self.check = check
        self.results = results
        self.links = links or ImageLinks(secret=None)
        self.limits = limits
        self.clock = clock
        self.poll_interval = poll_interval
        self.webhooks = webhooks
        self._recent: tuple[float, Durations] | None = None  # (read at, durations)

    # ---- submit ------------------------------------------------------------------------
    async def submit(
        self, body: dict[str, Any], *, idempotency_key: str | None, caller: Caller | None = None
    ) -> Job:
        """Queue a job of `caller` (by default the request's: `current_caller()`)."""
        caller = caller or current_caller()
        options = validate_fields(JobOptions, {k: v for k, v in body.items() if k in JOB_FIELDS})
        generation = validate_fields(
            GenerationRequest, {k: v for k, v in body.items() if k not in JOB_FIELDS}
        )
        if options.webhook is not None:
            if self.webhooks is None:
                raise InvalidInput.field("webhook", "this server sends no webhooks")
            await self.webhooks.check(options.webhook)
        request = generation.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        if self.check is not None:  # what the worker will send, judged by generation now
            await self.check(request)
        now = self.clock()
        job = Job(
            id=new_task_id(),
            owner=caller.name,
            request=request,
            created_at=now,
            updated_at=now,
            max_attempts=self.limits.max_attempts,
            timeout_s=options.timeout or self.limits.timeout_s,
            webhook=options.webhook,
            idempotency_key=idempotency_key,
            request_hash=request_hash(body) if idempotency_key else None,
            **submitted_trace(),
        )
        try:
            stored = await self.store.submit(
                job, max_queued=self.limits.max_queued, max_active=caller.max_concurrent_jobs
            )
        except OwnerAtLimit as busy:
            raise TooManyRequests(
                f"key {caller.name!r} has {busy.active} jobs queued or running, its limit;"
                " retry once one ends",
                details={
                    "key": caller.name,
                    "active": busy.active,
                    "max_concurrent_jobs": caller.max_concurrent_jobs,
                },
                headers={
                    "Retry-After": str(await self._first_end(caller.name, max(1, busy.active)))
                },
            ) from busy
        except QueueFull as full:
            eta = await self._eta(request, full.queued)
            raise TooManyRequests(
                f"the job queue is full ({full.queued} queued); retry later",
                details={"queued": full.queued, "max_queued": self.limits.max_queued},
                headers={"Retry-After": str(max(1, math.ceil(eta or 1)))},
            ) from full
        except IdempotencyConflict as conflict:
            raise Conflict(
                "this Idempotency-Key was used with a different request body",
                details={"idempotency_key": idempotency_key},
            ) from conflict
        task_id_var.set(stored.id)  # the rest of the submit request's log lines name the job
        return stored

    async def _first_end(self, owner: str, most: int) -> int:
        """Seconds (at least 1) until the first of `owner`'s jobs (it has about `most`)
        should end, the Retry-After of a submit over its limit: the running job with the
        least left, else (all queued) its oldest queued job's ETA."""
        now, durations = self.clock(), await self._durations()
        running, _ = await self.store.list_jobs(
            status=JobStatus.RUNNING, limit=most, cursor=None, owner=owner
        )
        left = [remaining(job, durations, now=now) for job in running]
        etas = [seconds for seconds in left if seconds is not None]
        if not etas:
            queued, _ = await self.store.list_jobs(
                status=JobStatus.QUEUED, limit=most, cursor=None, owner=owner
            )
            if queued:
                _, eta = await self._eta_of(queued[-1])  # newest first: the last is the oldest
                etas = [eta] if eta is not None else []
        return max(1, math.ceil(min(etas, default=1)))

    # ---- reads -------------------------------------------------------------------------
    async def _job(self, job_id: str, caller: Caller | None, action: str = "read_job") -> Job:
        """The job, if `caller` may see it: another owner's is as unknown as a missing one."""
        caller = caller or current_caller()
        job = await self.store.get(job_id)
        if job is None or job.status is JobStatus.EXPIRED or not access.may_see(caller, job):
            raise NotFound(f"no job {job_id!r} (unknown, or removed after its retention)")
        access.opened(caller, job, action)
        return job

    async def _durations(self) -> Durations:
        """Recent jobs' run times; read again once `_DURATIONS_TTL_S` old (a status poll
        must not read the recent jobs, requests and all, every time)."""
        now = self.clock()
        cached = self._recent
        if cached is None or not 0 <= now - cached[0] < _DURATIONS_TTL_S:
            done, _ = await self.store.list_jobs(
                status=JobStatus.DONE, limit=_RECENT_JOBS, cursor=None
            )
            cached = self._recent = (now, Durations(done))
        return cached[1]

    async def _eta(self, request: dict[str, Any], position: int) -> float | None:
        """Seconds until a job of `request`, `position` in the queue, would end."""
        durations = await self._durations()
        own = durations.expected(request)
        if own is None:
            return None
        running, _ = await self.store.list_jobs(
            status=JobStatus.RUNNING, limit=_MOST_RUNNING, cursor=None
        )
        now = self.clock()
        left = [remaining(job, durations, now=now) for job in running]
        return queued_eta(
            own,
            position=position,
            running=[seconds for seconds in left if seconds is not None],
            each_ahead=durations.typical() or own,
            # The workers alive are at least those running jobs now (with a queue, all are).
            workers=max(1, self.limits.concurrency, len(running)),
        )

    async def _eta_of(self, job: Job) -> tuple[int | None, float | None]:
        """A job's queue position (queued only) and the seconds until it should end."""
        position = await self.store.position(job.id) if job.status is JobStatus.QUEUED else None
        eta = None
        if position is not None:
            eta = await self._eta(job.request, position)
        elif job.status is JobStatus.RUNNING:
            eta = remaining(job, await self._durations(), now=self.clock())
        return position, eta

    async def view(self, job: Job) -> JobView:
        position, eta = await self._eta_of(job)
        return JobView(
            task_id=job.id,
            owner=job.owner,
            status=job.status,
            progress=Progress(step=job.progress_step, total=job.progress_total),
            queue_position=position,
            eta_s=None if eta is None else round(eta, 3),
            attempts=job.attempts,
            timestamps=Timestamps(
                created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at
            ),
            waiting=job.waiting if job.status is JobStatus.RUNNING else None,
            error=job.error if job.status is not JobStatus.DONE else None,
        )

    async def status(self, job_id: str, *, caller: Caller | None = None) -> JobView:
        return await self.view(await self._job(job_id, caller))

    async def list_jobs(
        self,
        *,
        status: JobStatus | None,
        limit: int,
        cursor: str | None,
        owner: str | None = None,
        caller: Caller | None = None,
    ) -> JobList:
        """The caller's own jobs; an admin's list spans owners (or is `owner`'s)."""
        caller = caller or current_caller()
        owner = access.listed_owner(caller, owner)
        jobs, next_cursor = await self.store.list_jobs(
            status=status, limit=limit, cursor=cursor, owner=owner
        )
        access.listed(caller, owner, jobs)
        return JobList(jobs=[await self.view(job) for job in jobs], next_cursor=next_cursor)

    async def result(self, job_id: str, *, caller: Caller | None = None) -> dict[str, Any]:
        job = await self._job(job_id, caller)
        if job.status is JobStatus.FAILED:
            error = job.error or {}
            message = error.get("message", "unknown error")
            raise JobFailedError(f"job {job_id} failed: {message}", details=error)
        if job.status is not JobStatus.DONE or job.result is None:
            raise Conflict(
                f"job {job_id} is {job.status}, not done", details={"status": job.status}
            )
        images = await run_in_threadpool(self._with_images, job.result, _output_of(job))
        return {"task_id": job.id, **images}

    def _with_images(self, result: dict[str, Any], output: OutputKind) -> dict[str, Any]:
        """The stored result with each image's bytes (output base64) or link (url)."""
        images = []
        for image in result.get("images", []):
            digest = image["sha256"]
            if output is OutputKind.URL and self.results.has(digest):
                link = self.links.link(digest, OutputFormat(image["format"]))
                images.append({**image, "url": link})
                continue
            data = None if output is OutputKind.URL else self.results.load(digest)
            if data is None:
                raise NotFound("the job's images were removed")
            images.append({**image, "image": base64.b64encode(data).decode("ascii")})
        return {**result, "images": images}

    # ---- cancel ------------------------------------------------------------------------
    async def cancel(self, job_id: str, *, caller: Caller | None = None) -> JobView:
        before = await self._job(job_id, caller, action="cancel_job")
        job = await self.store.cancel(job_id, now=self.clock())
        assert job is not None
        if before.status is JobStatus.QUEUED and job.status is JobStatus.CANCELLED:
            # Nobody runs it, so the manager writes its last event (and calls its webhook).
            event = moved_event(job)
            await self.store.append(job_id, event)
            if self.webhooks is not None:
                await self.webhooks.notify(job, event)
        return await self.view(job)

    # ---- events ------------------------------------------------------------------------
    async def events(
        self, job_id: str, *, after: int, caller: Caller | None = None
    ) -> AsyncIterator[tuple[int, JobEvent]]:
        """The job's event log from `after`, live until its terminal event; the result's
        images with their data. Unknown (404) now, before a stream opens."""
        job = await self._job(job_id, caller)
        return self._follow(job_id, after, _output_of(job))

    async def _follow(
        self, job_id: str, after: int, output: OutputKind
    ) -> AsyncIterator[tuple[int, JobEvent]]:
        while True:
            stop_if_cancelled()
            for event_id, event in await self.store.read(job_id, after=after):
                after = event_id
                if isinstance(event, JobSucceeded):
                    result = await run_in_threadpool(self._with_images, event.result, output)
                    event = event.model_copy(update={"result": result})
                yield event_id, event
                if is_terminal(event):
                    return
            job = await self.store.get(job_id)
            if job is None:
                return
            await asyncio.sleep(self.poll_interval)


def _output_of(job: Job) -> OutputKind:
    """How the job's request asked for its images (a request stored before the field
    existed: base64)."""
    try:
        return OutputKind(job.request.get("output", OutputKind.BASE64))
    except ValueError:
        return OutputKind.BASE64
