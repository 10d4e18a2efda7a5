"""The job manager app: `create_app(settings, generation=...)`.

Its lifespan opens the store (SQLite or Redis), and unless told otherwise runs one worker
in this process, plus a maintenance loop that recovers jobs of dead workers and removes
jobs past their retention. The worker reaches the generation service through the client
opener the composition hands over (by URL, or in-process).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from pydantic import BaseModel
from sse_starlette import EventSourceResponse

from easel.core.app import create_service_app
from easel.core.body import read_fields
from easel.core.clients import ClientOpener
from easel.core.container import container_of, install_container
from easel.core.events import job_sse_fields
from easel.core.health import HealthStatus, ServiceHealth
from easel.jobs.manager import JobLimits, JobList, JobManager, JobView
from easel.jobs.models import JobStatus
from easel.jobs.results import ResultFiles
from easel.jobs.runtime import maintain, open_store, open_webhooks, worker_config
from easel.jobs.settings import JobsSettings
from easel.jobs.store.base import JobStore
from easel.jobs.worker import Worker

SERVICE = "job_manager"


@dataclass(frozen=True)
class JobsContainer:
    settings: JobsSettings
    manager: JobManager
    store: JobStore
    results: ResultFiles
    worker: Worker | None


Container = Annotated[JobsContainer, Depends(container_of(JobsContainer))]
router = APIRouter(tags=["jobs"])


class Queued(BaseModel):
    task_id: str
    status: JobStatus


@router.post("/api/generate/async", status_code=202, response_model=Queued)
async def submit(
    request: Request,
    container: Container,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Queued:
    """Queue a generation (the body of `POST /api/generate`, plus optional `webhook` and
    `timeout`; `webhook` is `{url, events?}`: signed POSTs when the job ends, see the README).
    202 with the task id. The same `Idempotency-Key` and body return the same
    job; the same key with another body is a 409. A full queue is a 429 with Retry-After."""
    settings = container.settings
    body = await read_fields(
        request, max_field_bytes=settings.max_body_bytes, max_json_depth=settings.max_json_depth
    )
    job = await container.manager.submit(body, idempotency_key=idempotency_key)
    return Queued(task_id=job.id, status=job.status)


@router.get("/api/generate/status/{task_id}", response_model=JobView)
async def status(task_id: str, container: Container) -> JobView:
    """Status, progress (step, total), queue position, ETA, timestamps and error."""
    return await container.manager.status(task_id)


@router.get("/api/generate/result/{task_id}")
async def result(task_id: str, container: Container) -> dict[str, Any]:
    """The images of a done job (base64). 409 while it is not done, or with the error of a
    failed one; 404 when unknown or removed after its retention."""
    return await container.manager.result(task_id)


@router.post("/api/generate/cancel/{task_id}", response_model=JobView)
async def cancel(task_id: str, container: Container) -> JobView:
    """Cancel (idempotent): a queued job never starts; a running one stops at its next step."""
    return await container.manager.cancel(task_id)


@router.get("/api/generate/events/{task_id}", response_class=EventSourceResponse)
async def events(
    task_id: str,
    container: Container,
    last_event_id: Annotated[int, Header(ge=0)] = 0,
) -> EventSourceResponse:
    """Server-sent events from the job's log, from `Last-Event-ID` on (replay after a
    reconnect), live until the terminal event (`result` with the images, `error` or
    `cancelled`)."""
    await container.manager.status(task_id)  # 404 before the stream opens

    async def fields() -> AsyncIterator[dict[str, str]]:
        async for event_id, event in container.manager.events(task_id, after=last_event_id):
            yield job_sse_fields(event, event_id)

    return EventSourceResponse(fields(), ping=15)


@router.get("/api/jobs", response_model=JobList)
async def list_jobs(
    container: Container,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> JobList:
    """Jobs, newest first, optionally of one status; `next_cursor` continues the list."""
    return await container.manager.list_jobs(status=status, limit=limit, cursor=cursor)


class PodGenerateRequest(BaseModel):
    """compat: the body of the first version's pod API, `POST /generate`."""

    mode: str
    prompt: str | None = None
    style: str | None = None
    target_image: str | None = None
    extra_params: dict[str, Any] | None = None


class PodGenerateQueued(BaseModel):
    """compat: the first version's pod API answer: the job queued, no image yet."""

    task_id: str
    status: str
    image: None = None
    error: None = None


@router.post("/generate", response_model=PodGenerateQueued, include_in_schema=True)
async def pod_generate(body: PodGenerateRequest, container: Container) -> PodGenerateQueued:
    """compat: the first version's pod API. Queues a real job (poll
    `/api/generate/status/{task_id}`); `target_image` is the input image."""
    request: dict[str, Any] = {"mode": body.mode}
    if body.prompt is not None:
        request["prompt"] = body.prompt
    if body.style is not None:
        request["style"] = body.style
    if body.target_image is not None:
        request["input_image"] = body.target_image
    if body.extra_params:
        request["extra_params"] = body.extra_params
    job = await container.manager.submit(request, idempotency_key=None)
    return PodGenerateQueued(task_id=job.id, status=job.status)


health_router = APIRouter(tags=["health"])


@health_router.get("/api/health", response_model=ServiceHealth)
async def health(container: Container) -> ServiceHealth:
    """Store backend and reachability, job counts, the in-process worker, disk used."""
    try:
        counts = await container.store.counts()
    except Exception as exc:  # the store itself is down: say so, do not crash
        return ServiceHealth(
            status=HealthStatus.UNHEALTHY,
            service=SERVICE,
            version=container.settings.version,
            detail={"backend": container.settings.jobs_backend, "error": repr(exc)},
        )
    return ServiceHealth(
        status=HealthStatus.HEALTHY,
        service=SERVICE,
        version=container.settings.version,
        detail={
            "backend": container.settings.jobs_backend,
            "jobs": {status.value: count for status, count in counts.items()},
            "worker": container.worker.worker_id if container.worker else None,
        },
    )


def create_app(settings: JobsSettings, *, generation: ClientOpener | None = None) -> FastAPI:
    """`generation` opens the in-process worker's client of the generation service; without
    it the in-process worker must be off (EASEL_JOBS_IN_PROCESS_WORKER=false)."""
    if generation is None and settings.jobs_in_process_worker:
        raise ValueError("the job manager's in-process worker needs a way to generation")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            store = await open_store(settings)
            stack.push_async_callback(store.close)
            results = ResultFiles(settings.results_path)
            webhooks = await open_webhooks(settings, stack)
            manager = JobManager(
                store=store,
                results=results,
                limits=JobLimits(
                    max_queued=settings.jobs_max_queued,
                    max_attempts=settings.jobs_max_attempts,
                    timeout_s=settings.jobs_timeout,
                    concurrency=settings.worker_concurrency,
                ),
                webhooks=webhooks,
            )
            worker = None
            tasks = []
            if generation is not None and settings.jobs_in_process_worker:
                worker = Worker(
                    store=store,
                    results=results,
                    generation=await generation(stack),
                    config=worker_config(settings),
                    notify=webhooks.notify,
                )
                tasks.append(asyncio.create_task(worker.run()))
            tasks.append(asyncio.create_task(maintain(manager, settings)))
            install_container(
                app,
                JobsContainer(
                    settings=settings, manager=manager, store=store, results=results, worker=worker
                ),
            )
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    return create_service_app(
        settings,
        service=SERVICE,
        description="Durable async generation jobs: queue, progress, events, cancel, results.",
        lifespan=lifespan,
        routers=[router, health_router],
    )
