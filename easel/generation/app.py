"""The generation app: `create_app(settings)`. The engine loads in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sse_starlette import EventSourceResponse

from easel.core.app import create_service_app
from easel.core.body import parse_body
from easel.core.container import install_container
from easel.core.errors import EaselError, NotFound, error_body
from easel.core.events import Cancelled, Failed, GenerationEvent, Succeeded, sse_fields
from easel.core.generation_api import GenerationRequest, GenerationResult
from easel.core.health import HealthStatus, ServiceHealth
from easel.core.image_links import ImageLinks
from easel.core.image_store import ImageStore
from easel.core.images import ImageCodec
from easel.core.metrics import HttpMetrics
from easel.core.openapi import error_responses, event_stream, json_or_form_body, with_maxima
from easel.core.request_context import current_request_id
from easel.generation.batching import Batcher
from easel.generation.catalogue_routes import router as catalogue_router
from easel.generation.container import Container, GenerationContainer
from easel.generation.engines.base import Engine
from easel.generation.engines.comfyui import ComfyUIEngine
from easel.generation.legacy import GpuServiceGenerate, GpuServiceGenerated, run_legacy
from easel.generation.metrics import GenerationMetrics
from easel.generation.outputs import ImageOutputs
from easel.generation.service import GenerationService, Limits, Submission
from easel.generation.settings import GenerationSettings
from easel.generation.styles import Styles

SERVICE = "generation"


router = APIRouter(tags=["generation"])
# A request the engine runs can also meet a full queue or a failing, absent or slow engine.
ENGINE_ERRORS = error_responses(429, 502, 503, 504)
STREAM_EVENTS = ("queued", "loading", "started", "progress", "result", "error", "cancelled")
STREAM_EXAMPLE = (
    'event: queued\ndata: {"type": "queued", "position": 0, "request_id": "5f0c6e1a"}\n\n'
    'event: started\ndata: {"type": "started", "batch_size": 1, "batch_requests": 1}\n\n'
    'event: progress\ndata: {"type": "progress", "step": 1, "total": 20, "preview": null}\n\n'
    'event: result\ndata: {"type": "result", "result": {"images": [...], "seed": 42}}\n\n'
)


async def _until_disconnected(request: Request) -> None:
    # The body is read already, so the next message can only be the disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _parse_request(request: Request, container: Container) -> GenerationRequest:
    settings = container.settings
    return await parse_body(
        request,
        GenerationRequest,
        max_field_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
    )


async def _submit(request: Request, container: Container, *, listening: bool) -> Submission:
    body = await _parse_request(request, container)
    return await container.service.submit(
        body, request_id=current_request_id(), listening=listening
    )


@router.post(
    "/api/generate",
    response_model=GenerationResult,
    responses=ENGINE_ERRORS,
    openapi_extra=json_or_form_body(GenerationRequest),
)
async def generate(request: Request, container: Container) -> GenerationResult:
    """Generate or edit synchronously and return the images. A client that disconnects
    cancels its request: the pipeline stops at the next step."""
    submission = await _submit(request, container, listening=False)
    watcher = asyncio.create_task(_until_disconnected(request))
    watcher.add_done_callback(lambda _: container.batcher.cancel(submission.ticket))
    try:
        return await container.service.result(submission)
    finally:
        watcher.cancel()


def _terminal_event(exc: EaselError) -> GenerationEvent:
    if exc.code == "cancelled":
        return Cancelled(reason=exc.message)
    error = error_body(exc.code, exc.message, exc.details)["error"]
    return Failed(error=error, status=exc.status, retry_after=_seconds(exc.headers))


def _seconds(headers: dict[str, str]) -> float | None:
    """An error's Retry-After for the stream's job workers (easel's are seconds)."""
    try:
        return float(headers["Retry-After"])
    except (KeyError, ValueError):
        return None


@router.post(
    "/api/generate/stream",
    response_class=EventSourceResponse,
    openapi_extra=json_or_form_body(GenerationRequest),
    responses={**event_stream(STREAM_EXAMPLE, STREAM_EVENTS), **ENGINE_ERRORS},
)
async def generate_stream(request: Request, container: Container) -> EventSourceResponse:
    """Server-sent events: `queued` (position, request_id), `loading` (model: not loaded,
    it loads first), `started` (batch_size: images
    the pipeline call generates; batch_requests: requests sharing it), `progress` (step,
    total, optional preview), then `result`, `error` or `cancelled`. Closing the stream
    cancels the request. Invalid requests are refused before the stream opens."""
    submission = await _submit(request, container, listening=True)

    async def events() -> AsyncIterator[dict[str, str]]:
        try:
            count = 0
            while (event := await submission.ticket.events.get()) is not None:
                count += 1
                yield sse_fields(event, count)
            try:
                result = await container.service.result(submission)
                final: GenerationEvent = Succeeded(result=result.model_dump(mode="json"))
            except EaselError as exc:
                final = _terminal_event(exc)
            yield sse_fields(final, count + 1)
        finally:
            container.batcher.cancel(submission.ticket)  # no-op once finished

    return EventSourceResponse(events(), ping=15)


class Validated(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"valid": True, "warnings": []}]})

    valid: bool
    warnings: list[str]


@router.post(
    "/api/generate/validate",
    response_model=Validated,
    openapi_extra=json_or_form_body(GenerationRequest),
    responses=error_responses(503),
)
async def validate(request: Request, container: Container) -> Validated:
    """Check a request as `POST /api/generate` would, without running it: 200 with the
    warnings it would carry, or the 422 (naming the field) it would get. The job manager
    asks this when a job is submitted; a front end may ask it before sending a form."""
    prepared = await container.service.validate(await _parse_request(request, container))
    return Validated(valid=True, warnings=list(prepared.warnings))


class CancelAnswer(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"request_id": "5f0c6e1a", "cancelled": True}]}
    )

    request_id: str
    cancelled: bool


@router.post(
    "/api/generate/requests/{request_id}/cancel",
    response_model=CancelAnswer,
    responses=error_responses(404, 422),
)
async def cancel(request_id: str, container: Container) -> CancelAnswer:
    """Cancel a queued or running synchronous/streamed request by its request id (the
    `X-Request-ID` it was sent with, or `request_id` of its `queued` event)."""
    if not container.service.cancel(request_id):
        raise NotFound(f"no queued or running request {request_id!r}")
    return CancelAnswer(request_id=request_id, cancelled=True)


class StylesAnswer(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"styles": ["cinematic", "watercolor", "anime"]}]}
    )

    styles: list[str]


@router.get("/api/generate/styles", response_model=StylesAnswer)
async def styles(container: Container) -> StylesAnswer:
    """The style presets a request may name in `style`."""
    return StylesAnswer(styles=container.service.styles.names())


@router.post("/generate", response_model=GpuServiceGenerated, include_in_schema=False)
async def legacy_generate(body: GpuServiceGenerate, container: Container) -> GpuServiceGenerated:
    """compat: the first version's GPU service call: run workflow `workflow` with `params`
    and answer `{status: done|failed, image, error}`."""
    workflows = container.engine.capabilities.workflows
    return await run_legacy(container.service, body, workflows=workflows)


health_router = APIRouter(tags=["health"])


def _health(container: GenerationContainer) -> ServiceHealth:
    engine = container.engine.health()
    batcher = container.batcher
    detail: dict[str, Any] = {
        "engine": container.engine.name,
        "ready": engine.ready,
        "gpu_available": engine.gpu_available,
        **engine.detail,
        "queue": {
            "pending": batcher.pending,
            "waiting": batcher.waiting,
            "running_calls": batcher.running_calls,
            "max_pending": batcher.max_pending,
            "calls": batcher.calls,
            "steps_run": batcher.steps_run,
            "last_call": batcher.last_call,
        },
        "last_error": engine.error or batcher.last_error,
    }
    status = HealthStatus.HEALTHY if engine.ready else HealthStatus.DEGRADED
    if engine.loading:
        status = HealthStatus.LOADING
    return ServiceHealth(
        status=status, service=SERVICE, version=container.settings.version, detail=detail
    )


@health_router.get("/api/health", response_model=ServiceHealth)
async def health(container: Container) -> ServiceHealth:
    """Engine, models, device and dtype, queue depth and the last error. `loading` while
    the default model loads; `degraded` while no model can run (failed to load: see
    `last_error`)."""
    return _health(container)


@health_router.get("/health", include_in_schema=False)
async def legacy_health(container: Container) -> JSONResponse:
    """compat: the first version's GPU service health; 503 when it cannot generate."""
    report = _health(container)
    failed = report.detail["last_error"] is not None and not report.detail["ready"]
    status = HealthStatus.UNHEALTHY if failed else report.status
    if status is HealthStatus.LOADING:
        status = HealthStatus.DEGRADED  # compat: the first version had no `loading`
    body = {
        "status": status,
        "comfyui_available": bool(report.detail.get("comfyui_available", False)),
        "service": SERVICE,
        "version": report.version,
    }
    return JSONResponse(body, status_code=503 if failed else 200)


def build_engine(settings: GenerationSettings) -> Engine:
    if settings.generation_engine == "comfyui":
        return ComfyUIEngine.from_settings(settings)
    # Imported here: building the app (e.g. for the gateway's docs) must not load torch.
    from easel.generation.engines.diffusers import DiffusersEngine

    return DiffusersEngine.from_settings(settings)


def create_app(settings: GenerationSettings, *, engine: Engine | None = None) -> FastAPI:
    http_metrics = HttpMetrics(SERVICE)
    generation_metrics = GenerationMetrics(http_metrics.registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        active_engine = engine or build_engine(settings)
        batcher = Batcher(
            engine=active_engine,
            window_s=settings.batch_window_ms / 1000,
            max_batch_images=settings.batch_max_images,
            max_pending=settings.generation_max_pending,
            metrics=generation_metrics,
        )
        codec = ImageCodec.from_settings(settings)
        service = GenerationService(
            engine=active_engine,
            batcher=batcher,
            codec=codec,
            styles=Styles.load(settings.styles_file),
            limits=Limits(
                max_num_images=settings.max_num_images,
                max_steps=settings.max_steps,
                max_side=settings.max_side,
                max_input_images=settings.max_input_images,
                max_controls=settings.generation_max_controls,
            ),
            outputs=ImageOutputs(
                codec=codec,
                store=ImageStore(settings.images_path),
                links=ImageLinks.from_settings(settings),
            ),
        )
        install_container(
            app,
            GenerationContainer(
                settings=settings,
                service=service,
                engine=active_engine,
                batcher=batcher,
            ),
        )
        await active_engine.start()
        dispatcher = asyncio.create_task(batcher.run())
        try:
            yield
        finally:
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher
            await active_engine.close()

    app = create_service_app(
        settings,
        service=SERVICE,
        description="Text-to-image, edit and inpaint, batched, with progress and cancel.",
        lifespan=lifespan,
        routers=[router, catalogue_router, health_router],
        body_models=[GenerationRequest],
        metrics=http_metrics,
    )
    app.openapi = with_maxima(  # type: ignore[method-assign]
        app,
        GenerationRequest,
        {
            "steps": settings.max_steps,
            "num_images": settings.max_num_images,
            "width": settings.max_side,
            "height": settings.max_side,
        },
    )
    return app
