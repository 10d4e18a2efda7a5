"""The gateway's settings: where it listens, how it calls services, health, the HTTP edge.

Where each service runs (its URL, or in-process) and the per-service timeouts and health
modes are the composition's (`easel.compose.settings.ServiceTopology`): the gateway is
handed its upstreams already described (`ServiceEndpoint`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, IPvAnyNetwork

from easel.core.settings import SharedSettings, env
from easel.gateway.rate_limits_settings import RateLimitSettings


class HealthMode(StrEnum):
    """How the gateway learns a service's health."""

    ACTIVE = "active"  # probe GET /api/health
    PASSIVE = "passive"  # infer from recent real traffic; never wakes a scaled-to-zero service


class ServiceEndpoint:
    """Where and how the gateway reaches one service."""

    def __init__(
        self,
        name: str,
        url: str | None,
        health_mode: HealthMode,
        timeout: float,
    ) -> None:
        self.name = name  # the service's key: health keys, logs, metrics
        self.url = url.rstrip("/") if url else None
        self.health_mode = health_mode
        self.timeout = timeout

    @property
    def in_process(self) -> bool:
        return self.url is None


class GatewaySettings(SharedSettings, RateLimitSettings):
    """The gateway's own settings (and the bind address of services run alone)."""

    host: str = Field("127.0.0.1", validation_alias=env("HOST", "BACKEND_HOST"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=env("PORT", "BACKEND_PORT"))

    # --- gateway -> service calls ----------------------------------------------------
    request_timeout: float = Field(
        300.0, gt=0, validation_alias=env("REQUEST_TIMEOUT", "REQUEST_TIMEOUT")
    )
    max_connections: int = Field(200, ge=1, validation_alias=env("MAX_CONNECTIONS"))
    upstream_client: Literal["httpx", "aiohttp"] = Field(
        "aiohttp", validation_alias=env("UPSTREAM_CLIENT")
    )

    # --- health ------------------------------------------------------------------------
    health_timeout: float = Field(2.0, gt=0, validation_alias=env("HEALTH_TIMEOUT"))
    passive_health_window: float = Field(300.0, gt=0, validation_alias=env("PASSIVE_HEALTH_WINDOW"))

    # --- HTTP edge -----------------------------------------------------------------------
    cors_origins: list[str] = Field(default_factory=list, validation_alias=env("CORS_ORIGINS"))
    # Empty: any Host. Set it (e.g. ["localhost", "127.0.0.1", "easel.example.com"]) so a
    # DNS name rebound to this machine cannot reach it.
    allowed_hosts: list[str] = Field(default_factory=list, validation_alias=env("ALLOWED_HOSTS"))
    frame_ancestors: str = Field("'none'", validation_alias=env("FRAME_ANCESTORS"))
    # The proxies (addresses or networks) whose X-Forwarded-For is believed for the
    # client's address (`easel.gateway.client_address`); none by default.
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list, validation_alias=env("TRUSTED_PROXIES")
    )
