"""The image-utils app: `create_app(settings)`; one route per op, built from a table."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel

from easel.core.app import create_service_app
from easel.core.body import parse_body
from easel.core.container import container_of, install_container
from easel.core.cpu_pool import CpuPool
from easel.core.health import HealthStatus, ServiceHealth
from easel.core.images import ImageCodec
from easel.core.masks import MaskLimits
from easel.core.openapi import json_or_form_body
from easel.image_utils.schemas import (
    BODY_MODELS,
    CannyRequest,
    ConvertRequest,
    CropRequest,
    DiffRequest,
    DiffResult,
    ExtractObjectRequest,
    ImageResult,
    MaskRequest,
    ResizeRequest,
)
from easel.image_utils.service import ImageUtilsService
from easel.image_utils.settings import ImageUtilsSettings

SERVICE = "image_utils"


@dataclass(frozen=True)
class ImageUtilsContainer:
    settings: ImageUtilsSettings
    service: ImageUtilsService
    pool: CpuPool


Container = Annotated[ImageUtilsContainer, Depends(container_of(ImageUtilsContainer))]


@dataclass(frozen=True)
class Op:
    name: str
    body: type[BaseModel]
    result: type[BaseModel]
    run: Callable[[ImageUtilsService, Any], BaseModel]
    summary: str
    description: str


OPS = (
    Op("resize", ResizeRequest, ImageResult, ImageUtilsService.resize, "Resize an image",
       "By `scale`, or to `width`/`height` with `fit` stretch, contain or cover."),
    Op("crop", CropRequest, ImageResult, ImageUtilsService.crop, "Crop an image",
       "Keep the box (`x`, `y`, `width`, `height`); it must lie inside the image."),
    Op("convert", ConvertRequest, ImageResult, ImageUtilsService.convert, "Convert format",
       "Re-encode as png, jpeg (alpha flattened onto white) or webp with `quality`."),
    Op("extract-object", ExtractObjectRequest, ImageResult, ImageUtilsService.extract_object,
       "Cut out an object", "The image with the mask as its alpha channel, optionally "
       "cropped to the mask's bounding box plus `padding`."),
    Op("diff", DiffRequest, DiffResult, ImageUtilsService.diff, "Compare two images",
       "Mean absolute error of two same-size images and a heat-map of where they differ."),
    Op("canny", CannyRequest, ImageResult, ImageUtilsService.canny, "Edge map",
       "Canny edges of the image's luminance, white on black."),
    Op("mask", MaskRequest, ImageResult, ImageUtilsService.mask, "Refine a mask",
       "Threshold, fill holes, dilate, erode, feather and invert a mask, in that order."),
)  # fmt: skip


def _add_op_route(router: APIRouter, op: Op) -> None:
    async def run_op(request: Request, container: Container) -> Any:
        settings = container.settings
        body = await parse_body(
            request,
            op.body,
            max_field_bytes=settings.max_body_bytes,
            max_json_depth=settings.max_json_depth,
        )
        return await container.pool.run(op.run, container.service, body, request=request)

    run_op.__name__ = op.name.replace("-", "_")
    router.add_api_route(
        f"/{op.name}",
        run_op,
        methods=["POST"],
        response_model=op.result,
        summary=op.summary,
        description=op.description,
        openapi_extra=json_or_form_body(op.body),
    )


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/image-utils", tags=["image-utils"])
    for op in OPS:
        _add_op_route(router, op)
    return router


health_router = APIRouter(tags=["health"])


@health_router.get("/api/health", response_model=ServiceHealth)
async def health(container: Container) -> ServiceHealth:
    """The image-utils service's own health; it has no dependencies, so it is healthy.
    `pool`: its CPU pool's workers, the ops running and those waiting for a worker."""
    return ServiceHealth(
        status=HealthStatus.HEALTHY,
        service=SERVICE,
        version=container.settings.version,
        detail={"ops": [op.name for op in OPS], "pool": container.pool.stats()},
    )


def create_app(settings: ImageUtilsSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = ImageUtilsService(
            codec=ImageCodec.from_settings(settings),
            mask_limits=MaskLimits.from_settings(settings),
        )
        pool = CpuPool(
            workers=settings.image_utils_workers,
            max_waiting=settings.image_utils_max_waiting,
            name="image-utils",
        )
        install_container(app, ImageUtilsContainer(settings=settings, service=service, pool=pool))
        try:
            yield
        finally:
            pool.close()

    return create_service_app(
        settings,
        service=SERVICE,
        description="Resize, crop, convert, cut out, compare, edge-detect and refine masks.",
        lifespan=lifespan,
        routers=[build_router(), health_router],
        body_models=BODY_MODELS,
    )
