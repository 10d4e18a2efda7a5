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

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.json_schema import SkipJsonSchema
from sse_starlette import EventSourceResponse

from easel.core.app import create_service_app
from easel.core.body import read_fields
from easel.core.clients import ClientOpener
from easel.core.container import container_of, install_container
from easel.core.errors import InvalidInput
from easel.core.events import EventType, job_sse_fields
from easel.core.health import HealthStatus, ServiceHealth
from easel.core.identity import current_caller
from easel.core.image_links import ImageLinks
from easel.core.image_store import ImageStore
from easel.core.metrics import HttpMetrics
from easel.core.openapi import BODY_ERRORS, error_responses, event_stream, json_or_form_body
from easel.core.request_context import task_id_var
from easel.jobs.images import image_response
from easel.jobs.manager import JobLimits, JobList, JobManager, JobView
from easel.jobs.models import JobStatus
from easel.jobs.queue_metrics import QueueMetrics
from easel.jobs.runtime import maintain, open_store, open_webhooks, worker_config
from easel.jobs.schemas import AsyncGenerationRequest, JobResult
from easel.jobs.settings import JobsSettings
from easel.jobs.store.base import JobStore
from easel.jobs.validation import GenerationCheck
from easel.jobs.worker import Worker

SERVICE = "job_manager"


@dataclass(frozen=True)
class JobsContainer:
    settings: JobsSettings
    manager: JobManager
    store: JobStore
    results: ImageStore
    worker: Worker | None


Container = Annotated[JobsContainer, Depends(container_of(JobsContainer))]


async def _names_its_job(request: Request) -> None:
    """The log lines of a route about one job (`{task_id}`) name it. Async, so that it
    runs in the request's own context (the edge clears it afterwards)."""
    task_id = request.path_params.get("task_id")
    if task_id is not None:
        task_id_var.set(str(task_id))


router = APIRouter(tags=["jobs"], dependencies=[Depends(_names_its_job)])
JOB_EVENTS_EXAMPLE = (
    'id: 1\nevent: queued\ndata: {"type": "queued", "status": "queued"}\n\n'
    'id: 2\nevent: started\ndata: {"type": "started", "attempt": 1}\n\n'
    'id: 3\nevent: progress\ndata: {"type": "progress", "step": 1, "total": 20}\n\n'
    'id: 4\nevent: result\ndata: {"type": "result", "status": "done", "result": {...}}\n\n'
)
# Another key's job is a 404 too (jobs belong to their owner: easel/jobs/access.py).
ID_ERRORS = error_responses(404, 422)


class Queued(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"task_id": "0f3c9a7d2b6e4f1a8c5d7e9b0a1c2d3e", "status": "queued"}]
        }
    )

    task_id: str
    status: JobStatus


@router.post(
    "/api/generate/async",
    status_code=202,
    response_model=Queued,
    responses=error_responses(409, 429),
    openapi_extra=json_or_form_body(AsyncGenerationRequest),
)
async def submit(
    request: Request,
    container: Container,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Queued:
    """Queue a generation (the body of `POST /api/generate`, plus optional `webhook` and
    `timeout`; `webhook` is `{url, events?}`: signed POSTs when the job ends, see the README).
    202 with the task id; the job belongs to the calling key. The same `Idempotency-Key`
    (per key) and body return the same job; the same key with another body is a 409. A
    full queue, or a key with its most concurrent jobs, is a 429 with Retry-After."""
    settings = container.settings
    body = await read_fields(
        request, max_field_bytes=settings.max_body_bytes, max_json_depth=settings.max_json_depth
    )
    job = await container.manager.submit(
        body, idempotency_key=idempotency_key, caller=current_caller()
    )
    return Queued(task_id=job.id, status=job.status)


@router.get("/api/generate/status/{task_id}", response_model=JobView, responses=ID_ERRORS)
async def status(task_id: str, container: Container) -> JobView:
    """Status, progress (step, total), queue position, ETA, timestamps and error."""
    return await container.manager.status(task_id, caller=current_caller())


@router.get(
    "/api/generate/result/{task_id}",
    response_model=JobResult,
    responses=error_responses(404, 409, 422),
)
async def result(task_id: str, container: Container) -> dict[str, Any]:
    """The images of a done job (base64; links for `output: "url"`). 409 while it is not
    done, or with the error of a failed one; 404 when unknown or removed after its
    retention."""
    return await container.manager.result(task_id, caller=current_caller())


@router.post("/api/generate/cancel/{task_id}", response_model=JobView, responses=ID_ERRORS)
async def cancel(task_id: str, container: Container) -> JobView:
    """Cancel (idempotent): a queued job never starts; a running one stops at its next step."""
    return await container.manager.cancel(task_id, caller=current_caller())


@router.get(
    "/api/generate/events/{task_id}",
    response_class=EventSourceResponse,
    responses={**event_stream(JOB_EVENTS_EXAMPLE, [t.value for t in EventType]), **ID_ERRORS},
)
async def events(
    task_id: str,
    container: Container,
    last_event_id: Annotated[int, Header(ge=0)] = 0,
) -> EventSourceResponse:
    """Server-sent events from the job's log, from `Last-Event-ID` on (replay after a
    reconnect), live until the terminal event (`result` with the images, `error` or
    `cancelled`)."""
    stream = await container.manager.events(  # 404 before the stream opens
        task_id, after=last_event_id, caller=current_caller()
    )

    async def fields() -> AsyncIterator[dict[str, str]]:
        async for event_id, event in stream:
            yield job_sse_fields(event, event_id)

    return EventSourceResponse(fields(), ping=15)


@router.get("/api/jobs", response_model=JobList, responses=error_responses(403, 422))
async def list_jobs(
    container: Container,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    owner: Annotated[
        str | None,
        Query(
            max_length=255,
            description="Admin keys only: the jobs of the key of this name (by default an "
            "admin key lists every key's jobs). Another key asking for any owner but "
            "itself gets 403.",
        ),
    ] = None,
) -> JobList:
    """The calling key's jobs (an admin key's: every key's), newest first, optionally of
    one status; `next_cursor` continues the list."""
    return await container.manager.list_jobs(
        status=status, limit=limit, cursor=cursor, owner=owner, caller=current_caller()
    )


class PodGenerateRequest(BaseModel):
    """compat: the body of the first version's pod API, `POST /generate`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"mode": "text-to-image", "prompt": "a red fox in the snow, watercolor"}]
        },
    )

    mode: str
    prompt: str | None = None
    style: str | None = None
    target_image: str | None = None
    extra_params: dict[str, Any] | None = None
    # compat: the first version's field for a feature easel will not build (SPEC.md,
    # Non-goals); declared only to refuse it by name.
    face_images: SkipJsonSchema[Any] = None

    @field_validator("face_images")
    @classmethod
    def _not_built(cls, value: Any) -> Any:
        raise ValueError(
            "not supported: easel puts no real person's face or identity onto other images"
        )


def _pod_named(exc: InvalidInput) -> InvalidInput:
    """compat: a refusal naming the first version's fields (`target_image`)."""
    if not isinstance(exc.details, list):
        return exc
    details = [
        {**d, "field": "target_image"} if d.get("field") == "input_image" else d
        for d in exc.details
        if isinstance(d, dict)
    ]
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details) or exc.message
    return InvalidInput(message, details=details)


class PodGenerateQueued(BaseModel):
    """compat: the first version's pod API answer: the job queued, no image yet."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task_id": "0f3c9a7d2b6e4f1a8c5d7e9b0a1c2d3e",
                    "status": "queued",
                    "image": None,
                    "error": None,
                }
            ]
        }
    )

    task_id: str
    status: str
    image: None = None
    error: None = None


@router.post(
    "/generate",
    response_model=PodGenerateQueued,
    responses=error_responses(*BODY_ERRORS, 429),
)
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
    try:
        job = await container.manager.submit(request, idempotency_key=None, caller=current_caller())
    except InvalidInput as exc:
        raise _pod_named(exc) from exc
    return PodGenerateQueued(task_id=job.id, status=job.status)


@router.get(
    "/api/images/{sha256}.{ext}",
    response_class=Response,
    responses={
        200: {
            "description": "The image's bytes as encoded (or a 304 for a matching ETag).",
            "content": {
                f"image/{ext}": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": f"(the {ext} file's bytes)",
                }
                for ext in ("png", "jpeg", "webp")
            },
        },
        **error_responses(401, 403, 404),
    },
)
async def image(
    sha256: str,
    ext: str,
    container: Container,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """A stored image of an `output: "url"` request (its `url`), by the sha256 of its
    bytes and its format (png, jpeg, webp); cached for good (the ETag is the digest).
    With API keys on, a key with the `jobs` scope, or the link's own unexpired signature
    (`expires`, `sig`) without a key. 404 for an unknown digest or another extension."""
    return await image_response(container.results, sha256, ext, if_none_match=if_none_match)


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
    """`generation` opens the client of the generation service that the in-process worker
    runs jobs through and submit checks requests with; without it the in-process worker
    must be off (EASEL_JOBS_IN_PROCESS_WORKER=false) and submit checks the schema only."""
    if generation is None and settings.jobs_in_process_worker:
        raise ValueError("the job manager's in-process worker needs a way to generation")
    metrics = HttpMetrics(SERVICE)
    gauges = QueueMetrics(metrics.registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            store = await open_store(settings)
            stack.push_async_callback(store.close)
            results = ImageStore(settings.images_path)
            webhooks = await open_webhooks(settings, stack)
            wants_client = settings.jobs_in_process_worker or settings.jobs_submit_check
            client = await generation(stack) if generation is not None and wants_client else None
            check = None
            if client is not None and settings.jobs_submit_check:
                check = GenerationCheck(client, timeout=settings.jobs_submit_check_timeout)
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
                check=check,
                links=ImageLinks.from_settings(settings),
            )
            worker = None
            tasks = []
            if client is not None and settings.jobs_in_process_worker:
                worker = Worker(
                    store=store,
                    results=results,
                    generation=client,
                    config=worker_config(settings),
                    notify=webhooks.notify,
                )
                tasks.append(asyncio.create_task(worker.run()))
            tasks.append(asyncio.create_task(maintain(manager, settings, gauges=gauges)))
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
        body_models=[AsyncGenerationRequest],
        metrics=metrics,
    )
