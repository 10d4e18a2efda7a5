"""The frame every service app is built on: errors, request edge, metrics."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from easel.core.docs import offline_docs_app
from easel.core.errors import install_error_handlers
from easel.core.internal_guard import InternalAuthMiddleware, configured_token
from easel.core.json_guard import JsonGuardMiddleware
from easel.core.metrics import HttpMetrics, install_metrics
from easel.core.middleware import BodyLimitMiddleware, RequestEdgeMiddleware
from easel.core.openapi import truthful_openapi
from easel.core.settings import SharedSettings


class Lifespan(Protocol):
    def __call__(self, app: FastAPI) -> AbstractAsyncContextManager[Any]: ...


def create_service_app(
    settings: SharedSettings,
    *,
    service: str,
    description: str,
    lifespan: Lifespan,
    routers: Sequence[APIRouter],
    body_models: Sequence[type[BaseModel]] = (),
    metrics: HttpMetrics | None = None,
) -> FastAPI:
    """`metrics`: pass one to add service-specific metrics to its registry."""
    app = offline_docs_app(
        title=f"{settings.api_title} {service}",
        description=description,
        version=settings.version,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    metrics = metrics or HttpMetrics(service)
    install_metrics(app, metrics)
    for router in routers:
        app.include_router(router)
    app.openapi = truthful_openapi(app, body_models)  # type: ignore[method-assign]
    # Last added runs first: the edge sees every request, including rejected bodies and
    # refused credentials; no body is read before the credential is checked; the JSON
    # guard reads only bodies the limit lets through.
    app.add_middleware(JsonGuardMiddleware, max_depth=settings.max_json_depth)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        InternalAuthMiddleware,
        service=metrics.service,
        token=configured_token(settings),
        max_age=settings.internal_token_max_age,
    )
    app.add_middleware(RequestEdgeMiddleware, service=metrics.service, metrics=metrics)
    return app
