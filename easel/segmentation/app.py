"""The segmentation app: `create_app(settings)`. The segmenter loads in the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request

from easel.core.app import create_service_app
from easel.core.body import parse_body
from easel.core.container import container_of, install_container
from easel.core.cpu_pool import CpuPool
from easel.core.health import HealthStatus, ServiceHealth
from easel.core.images import ImageCodec
from easel.core.masks import MaskLimits
from easel.core.openapi import error_responses, json_or_form_body
from easel.segmentation.cache import PreparedCache
from easel.segmentation.schemas import (
    PreparedImage,
    PrepareRequest,
    SmartMaskRequest,
    SmartMaskResult,
)
from easel.segmentation.segmenters import build_segmenter
from easel.segmentation.segmenters.base import Segmenter, SegmenterReport
from easel.segmentation.service import Limits, SegmentationService
from easel.segmentation.settings import SegmentationSettings

SERVICE = "segmentation"


@dataclass(frozen=True)
class SegmentationContainer:
    settings: SegmentationSettings
    service: SegmentationService
    report: SegmenterReport
    pool: CpuPool


Container = Annotated[SegmentationContainer, Depends(container_of(SegmentationContainer))]
router = APIRouter(tags=["segmentation"])


@router.post(
    "/api/smart-mask",
    response_model=SmartMaskResult,
    responses=error_responses(404, 503),
    openapi_extra=json_or_form_body(SmartMaskRequest),
)
async def smart_mask(request: Request, container: Container) -> SmartMaskResult:
    """A mask of the object under the clicked points (label 1 selects, 0 excludes) and/or
    inside a box: a single-channel PNG the image's size, with its bounding box, area and
    score. `multimask` adds the next-best candidates; `refine` post-processes the mask
    (fill holes, dilate, erode, feather) as image-utils' mask op does. Re-sending the same
    image is cheaper: its per-image work is cached; or prepare it once
    (`/api/smart-mask/prepare`) and send its `image_id` (404 once expired)."""
    settings = container.settings
    body = await parse_body(
        request,
        SmartMaskRequest,
        max_field_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
    )
    return await container.pool.run(container.service.smart_mask, body, request=request)


@router.post(
    "/api/smart-mask/prepare",
    response_model=PreparedImage,
    responses=error_responses(409, 503),
    openapi_extra=json_or_form_body(PrepareRequest),
)
async def prepare(request: Request, container: Container) -> PreparedImage:
    """Upload an image once: its per-image work (the segmenter's image embedding) is done
    now and kept under the `image_id` answered, which later `/api/smart-mask` calls send
    instead of `image`. It lives `expires_in` seconds after its last use (and while the
    cache has room: a 404 on a click says to prepare it again)."""
    body = await parse_body(
        request,
        PrepareRequest,
        max_field_bytes=container.settings.max_body_bytes,
        max_json_depth=container.settings.max_json_depth,
    )
    return await container.pool.run(container.service.prepare, body, request=request)


health_router = APIRouter(tags=["health"])


@health_router.get("/api/health", response_model=ServiceHealth)
async def health(container: Container) -> ServiceHealth:
    """The segmenter in use, whether FastSAM's weights were found, the device, the load
    time, the cache and the CPU pool (workers, masks running, masks waiting). `degraded`
    when the configured segmenter could not load (with `auto`, the classical one then
    serves)."""
    report = container.report
    detail = asdict(report)
    detail["cache"] = container.service.cache.stats()
    detail["pool"] = container.pool.stats()
    status = HealthStatus.DEGRADED if report.error else HealthStatus.HEALTHY
    return ServiceHealth(
        status=status, service=SERVICE, version=container.settings.version, detail=detail
    )


def create_app(
    settings: SegmentationSettings,
    *,
    loaded: tuple[Segmenter | None, SegmenterReport] | None = None,
) -> FastAPI:
    """`loaded`: a segmenter built already (`build_segmenter`, e.g. in a Modal enter hook);
    else the lifespan builds it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if loaded is None:
            segmenter, report = await asyncio.to_thread(build_segmenter, settings)
        else:
            segmenter, report = loaded
        service = SegmentationService(
            segmenter=segmenter,
            codec=ImageCodec.from_settings(settings),
            cache=PreparedCache(
                settings.segmentation_cache_size, ttl=settings.segmentation_cache_ttl
            ),
            limits=Limits(
                max_points=settings.segmentation_max_points,
                max_masks=settings.segmentation_max_masks,
                refine=MaskLimits.from_settings(settings),
            ),
            unavailable=report.error or "no segmenter is loaded",
        )
        pool = CpuPool(
            workers=settings.segmentation_workers,
            max_waiting=settings.segmentation_max_waiting,
            name="segmentation",
        )
        install_container(
            app,
            SegmentationContainer(settings=settings, service=service, report=report, pool=pool),
        )
        try:
            yield
        finally:
            pool.close()

    return create_service_app(
        settings,
        service=SERVICE,
        description="Smart masks from clicked points and boxes: FastSAM, or weight-free GrabCut.",
        lifespan=lifespan,
        routers=[router, health_router],
        body_models=[SmartMaskRequest, PrepareRequest],
    )
