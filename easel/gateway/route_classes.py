"""What kind of request a path is: the scope a key needs for it and the rate limit it
counts against. One table for both, so that auth and limits never disagree."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from easel.core.identity import ApiScope


class RouteClass(StrEnum):
    GENERATE = "generate"  # runs a model: sync generation, or queues a job
    ADMIN = "admin"  # operations: loading and unloading models (`/api/models/{name}/...`)
    JOBS = "jobs"  # reads or cancels jobs
    SEGMENT = "segment"
    UTILS = "utils"
    HEALTH = "health"  # liveness: always public, never limited
    SYSTEM = "system"  # deep health, metrics, docs: public or keyed by configuration
    PAGE = "page"  # the playground and the docs pages' assets: static files, always public
    OTHER = "other"  # anything else (404s): needs a key when keys are on


@dataclass(frozen=True)
class _Rule:
    prefix: str
    route_class: RouteClass
    exact: bool = False  # the prefix itself only, not the paths under it


# First match wins: the more specific prefixes come first.
_RULES: tuple[_Rule, ...] = (
    _Rule("/api/generate/async", RouteClass.GENERATE),
    _Rule("/api/generate/status", RouteClass.JOBS),
    _Rule("/api/generate/result", RouteClass.JOBS),
    _Rule("/api/generate/cancel", RouteClass.JOBS),
    _Rule("/api/generate/events", RouteClass.JOBS),
    _Rule("/api/generate/validate", RouteClass.GENERATE),
    _Rule("/api/generate", RouteClass.GENERATE),
    _Rule("/api/workflows", RouteClass.GENERATE),
    _Rule("/api/models", RouteClass.GENERATE, exact=True),  # the listing
    _Rule("/api/models", RouteClass.ADMIN),  # everything under it: load, unload
    _Rule("/api/jobs", RouteClass.JOBS),
    # Stored result images: a key with `jobs` (reading results), or a signed link.
    _Rule("/api/images", RouteClass.JOBS),
    _Rule("/generate", RouteClass.GENERATE),  # compat: the first version's pod API
    _Rule("/api/smart-mask", RouteClass.SEGMENT),
    _Rule("/api/image-utils", RouteClass.UTILS),
    _Rule("/api/health", RouteClass.HEALTH),
    _Rule("/health", RouteClass.HEALTH),  # compat
    _Rule("/api/system/health", RouteClass.SYSTEM),
    _Rule("/metrics", RouteClass.SYSTEM),
    _Rule("/docs", RouteClass.SYSTEM),
    _Rule("/redoc", RouteClass.SYSTEM),
    _Rule("/openapi.json", RouteClass.SYSTEM),
    _Rule("/static", RouteClass.PAGE),
)

# The scope each class needs; None: decided by configuration (health, system).
REQUIRED_SCOPE: dict[RouteClass, ApiScope | None] = {
    RouteClass.GENERATE: ApiScope.GENERATE,
    RouteClass.ADMIN: ApiScope.ADMIN,
    RouteClass.JOBS: ApiScope.JOBS,
    RouteClass.SEGMENT: ApiScope.SEGMENT,
    RouteClass.UTILS: ApiScope.UTILS,
    RouteClass.HEALTH: None,
    RouteClass.SYSTEM: None,
    RouteClass.PAGE: None,
    RouteClass.OTHER: None,
}


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def classify(path: str) -> RouteClass:
    if path == "/":  # the playground page
        return RouteClass.PAGE
    for rule in _RULES:
        if path == rule.prefix if rule.exact else _under(path, rule.prefix):
            return rule.route_class
    return RouteClass.OTHER
