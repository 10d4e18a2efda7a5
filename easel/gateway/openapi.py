"""The gateway's OpenAPI document: its own routes plus every service's public paths."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from easel.core.openapi import ENVELOPE_REF, UPSTREAM_ERRORS, error_responses, truthful
from easel.gateway.route_classes import RouteClass, classify
from easel.gateway.upstream import UpstreamService

# Paths each service answers for itself, not through the gateway.
_SERVICE_LOCAL_PATHS = {"/api/health", "/health", "/metrics"}
_UPSTREAM_RESPONSES = {str(s): r for s, r in error_responses(*UPSTREAM_ERRORS).items()}
# With API keys on: no or a bad key (401), a key without the route's scope (403; also a
# state-changing request from another site, gateway/browser_guard.py).
_AUTH_RESPONSES = {str(s): r for s, r in error_responses(401, 403).items()}

# Either header carries the key (gateway/auth/middleware.py).
SECURITY_SCHEMES = {
    "bearerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`easel keys create`), when the server has keys on.",
    },
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
SECURITY: list[dict[str, list[str]]] = [{"bearerKey": []}, {"apiKeyHeader": []}]


def _add_responses(operation: dict[str, Any], extra: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    for status, response in extra.items():
        responses.setdefault(status, response)  # a service's own answer keeps its example
    operation["responses"] = dict(sorted(responses.items()))


_METHODS = {"get", "head", "post", "put", "patch", "delete", "options"}
_SECONDS = {"type": "integer", "minimum": 0}
_RATE_LIMIT_HEADERS = {
    "Retry-After": {"description": "Seconds until the window resets.", "schema": _SECONDS},
    "RateLimit-Limit": {"description": "Requests allowed a minute.", "schema": _SECONDS},
    "RateLimit-Remaining": {"description": "Requests left in this window.", "schema": _SECONDS},
    "RateLimit-Reset": {"description": "Seconds until the window resets.", "schema": _SECONDS},
}
_RATE_LIMITED = (
    "Too many requests of this route class from this API key (or, without keys, this client "
    "address) in the current minute; retry after `Retry-After` seconds. Every response of a "
    "rate-limited route carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`."
)
_RATE_LIMIT_EXAMPLE = {
    "error": {
        "code": "too_many_requests",
        "message": "too many generate requests from this API key: the limit is 60 a minute; "
        "retry in 12 s",
        "details": {
            "route_class": "generate",
            "limit": 60,
            "window_seconds": 60,
            "retry_after": 12,
        },
    },
    "request_id": "5f0c6e1a9b2d4c3e8f7a6b5c4d3e2f1a",
}


def _proxied(item: dict[str, Any]) -> dict[str, Any]:
    """A service's path item as the gateway answers it: also 502/503/504 when the service
    is down, slow or broken, and 401/403 from the key check."""
    for operation in item.values():
        _add_responses(operation, {**_UPSTREAM_RESPONSES, **_AUTH_RESPONSES})
    return item


def _secured(schema: dict[str, Any]) -> None:
    """Every operation takes a key, except liveness, which is always public; the gateway's
    own keyed operations (deep health) can answer 401/403 too."""
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    schema["security"] = SECURITY
    for path, item in schema["paths"].items():
        for operation in item.values():
            if classify(path) is RouteClass.HEALTH:
                operation["security"] = []
            else:
                _add_responses(operation, _AUTH_RESPONSES)


def _rate_limited(item: dict[str, Any]) -> None:
    """Add the gateway's 429 to each operation of a rate-limited path; where a service
    answers 429 itself (a full queue), say both."""
    for method, operation in item.items():
        if method not in _METHODS:
            continue
        responses = operation.setdefault("responses", {})
        own = responses.get("429")
        if own is not None:
            own["description"] = f"{_RATE_LIMITED} Or: {own['description']}"
            own["headers"] = {**own.get("headers", {}), **_RATE_LIMIT_HEADERS}
            continue
        responses["429"] = {
            "description": _RATE_LIMITED,
            "headers": _RATE_LIMIT_HEADERS,
            "content": {
                "application/json": {
                    "schema": {"$ref": ENVELOPE_REF},
                    "example": _RATE_LIMIT_EXAMPLE,
                }
            },
        }
        operation["responses"] = dict(sorted(responses.items()))


def merged_openapi(
    gateway: FastAPI,
    upstreams: Sequence[UpstreamService],
    rate_limited: Callable[[str], bool] = lambda path: False,
) -> Callable[[], dict[str, Any]]:
    """`rate_limited(path)`: whether the gateway's rate limits apply to `path`."""

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
        _secured(schema)  # before the services' paths: those have their 401/403 already
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for upstream in upstreams:
            service_schema = upstream.openapi()
            for path, item in service_schema.get("paths", {}).items():
                if path not in _SERVICE_LOCAL_PATHS:
                    schema["paths"][path] = _proxied(copy.deepcopy(item))
            components.update(service_schema.get("components", {}).get("schemas", {}))
        for path, item in schema["paths"].items():
            if rate_limited(path):
                _rate_limited(item)
        gateway.openapi_schema = schema
        return schema

    return openapi
