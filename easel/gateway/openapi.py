"""The gateway's OpenAPI document: its own routes plus every service's public paths."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from easel.gateway.upstream import UpstreamService

# Paths each service answers for itself, not through the gateway.
_SERVICE_LOCAL_PATHS = {"/api/health", "/health", "/metrics"}


def merged_openapi(
    gateway: FastAPI, upstreams: Sequence[UpstreamService]
) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        if gateway.openapi_schema is not None:
            return gateway.openapi_schema
        schema = get_openapi(
            title=gateway.title,
            version=gateway.version,
            description=gateway.description,
            routes=gateway.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for upstream in upstreams:
            service_schema = upstream.openapi()
            for path, item in service_schema.get("paths", {}).items():
                if path not in _SERVICE_LOCAL_PATHS:
                    schema["paths"][path] = item
            components.update(service_schema.get("components", {}).get("schemas", {}))
        gateway.openapi_schema = schema
        return schema

    return openapi
