"""The gateway's OpenAPI document: its own routes plus every service's public paths."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from easel.core.openapi import UPSTREAM_ERRORS, error_responses, truthful
from easel.gateway.upstream import UpstreamService

# Paths each service answers for itself, not through the gateway.
_SERVICE_LOCAL_PATHS = {"/api/health", "/health", "/metrics"}
_UPSTREAM_RESPONSES = {str(s): r for s, r in error_responses(*UPSTREAM_ERRORS).items()}
_CROSS_SITE_RESPONSE = {str(s): r for s, r in error_responses(403).items()}
_STATE_CHANGING = {"post", "put", "patch", "delete"}


def _proxied(item: dict[str, Any]) -> dict[str, Any]:
    """A service's path item as the gateway answers it: also 502/503/504 when the service
    is down, slow or broken (a service's own answer of those statuses keeps its example),
    and 403 for a state-changing request from another site (gateway/browser_guard.py)."""
    for method, operation in item.items():
        responses = operation.setdefault("responses", {})
        extra = _CROSS_SITE_RESPONSE if method in _STATE_CHANGING else {}
        for status, response in {**_UPSTREAM_RESPONSES, **extra}.items():
            responses.setdefault(status, response)
        operation["responses"] = dict(sorted(responses.items()))
    return item


def merged_openapi(
    gateway: FastAPI, upstreams: Sequence[UpstreamService]
) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        if gateway.openapi_schema is not None:
            return gateway.openapi_schema
        schema = truthful(
            get_openapi(
                title=gateway.title,
                version=gateway.version,
                description=gateway.description,
                routes=gateway.routes,
            )
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for upstream in upstreams:
            service_schema = upstream.openapi()
            for path, item in service_schema.get("paths", {}).items():
                if path not in _SERVICE_LOCAL_PATHS:
                    schema["paths"][path] = _proxied(copy.deepcopy(item))
            components.update(service_schema.get("components", {}).get("schemas", {}))
        gateway.openapi_schema = schema
        return schema

    return openapi
