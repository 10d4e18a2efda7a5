"""The gateway's rate limit settings: requests per minute by route class, per key (per
client address when anonymous), and where the counters live."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from easel.core.settings import EaselSettingsBase, env
from easel.gateway.route_classes import RouteClass

# Requests per minute of one key (or address) in each route class, when the setting is
# unset. Sized for a public server: a person using a UI, or a script polling its jobs,
# stays well under them; a flood does not. Liveness health is never limited.
PUBLIC_PER_MINUTE: dict[RouteClass, int] = {
    RouteClass.GENERATE: 60,  # each one runs a model or queues a job
    RouteClass.ADMIN: 60,  # a model load reads gigabytes: a loop of them is no use
    RouteClass.JOBS: 600,  # status, events and result polls: 10 a second
    RouteClass.SEGMENT: 120,
    RouteClass.UTILS: 300,
    RouteClass.SYSTEM: 60,  # deep health calls every service
    RouteClass.OTHER: 60,  # unknown paths: scanners
}
# A gateway bound to loopback serves the people on this machine (scripts, tests, a
# local UI): the same limits, ten times over, still stop a runaway loop.
LOOPBACK_FACTOR = 10


def _per_minute(name: str) -> Any:
    return Field(None, ge=0, validation_alias=env(f"RATE_LIMIT_{name}"))


class RateLimitSettings(EaselSettingsBase):
    """Unset per-class limits take `PUBLIC_PER_MINUTE`, times `LOOPBACK_FACTOR` when the
    gateway binds a loopback address; 0: no limit for that class."""

    rate_limits: bool = Field(True, validation_alias=env("RATE_LIMITS"))
    rate_limit_generate: int | None = _per_minute("GENERATE")
    rate_limit_admin: int | None = _per_minute("ADMIN")
    rate_limit_jobs: int | None = _per_minute("JOBS")
    rate_limit_segment: int | None = _per_minute("SEGMENT")
    rate_limit_utils: int | None = _per_minute("UTILS")
    rate_limit_system: int | None = _per_minute("SYSTEM")
    rate_limit_other: int | None = _per_minute("OTHER")
    # Set: the counters live in this Redis (under the prefix), shared by every gateway
    # that names it; unset: in this process.
    rate_limit_redis_url: str | None = Field(None, validation_alias=env("RATE_LIMIT_REDIS_URL"))
    rate_limit_redis_prefix: str = Field(
        "easel:rate-limit", min_length=1, validation_alias=env("RATE_LIMIT_REDIS_PREFIX")
    )

    def per_minute(self, route_class: RouteClass, *, loopback: bool) -> int | None:
        """The default limit of `route_class`; None: not limited."""
        if not self.rate_limits or route_class not in PUBLIC_PER_MINUTE:
            return None
        configured: int | None = getattr(self, f"rate_limit_{route_class}")
        if configured is None:
            configured = PUBLIC_PER_MINUTE[route_class] * (LOOPBACK_FACTOR if loopback else 1)
        return configured or None
