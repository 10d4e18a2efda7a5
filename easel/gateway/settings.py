"""The gateway's settings: where it listens, how it calls services, health, the HTTP edge.

Where each service runs (its URL, or in-process) and the per-service timeouts and health
modes are the composition's (`easel.compose.settings.ServiceTopology`): the gateway is
handed its upstreams already described (`ServiceEndpoint`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, IPvAnyNetwork, SecretStr, model_validator

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


# The usual local development servers of a front end (React and Next.js on 3000, Vite on
# 5173): one in development works against a local easel out of the box; any other origin
# must be named.
LOCAL_DEV_ORIGINS = (
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "http://localhost:5173",
    "http://127.0.0.1:5173",
)


def _local_dev_origins() -> list[str]:
    return list(LOCAL_DEV_ORIGINS)


class GatewaySettings(SharedSettings, RateLimitSettings):
    """The gateway's own settings (and the bind address of services run alone)."""

    host: str = Field("127.0.0.1", validation_alias=env("HOST", "BACKEND_HOST"))
    port: int = Field(8000, ge=1, le=65535, validation_alias=env("PORT", "BACKEND_PORT"))

    # --- gateway -> service calls ----------------------------------------------------
    request_timeout: float = Field(
        300.0, gt=0, validation_alias=env("REQUEST_TIMEOUT", "REQUEST_TIMEOUT")
    )
    max_connections: int = Field(200, ge=1, validation_alias=env("MAX_CONNECTIONS"))
    upstream_client: Literal["httptools", "aiohttp", "httpx"] = Field(
        "httptools", validation_alias=env("UPSTREAM_CLIENT")
    )

    # --- health ------------------------------------------------------------------------
    health_timeout: float = Field(2.0, gt=0, validation_alias=env("HEALTH_TIMEOUT"))
    passive_health_window: float = Field(300.0, gt=0, validation_alias=env("PASSIVE_HEALTH_WINDOW"))

    # --- HTTP edge -----------------------------------------------------------------------
    # Browser origins CORS allows, whose state-changing requests the browser guard lets
    # through too; `*`: any (the operator's choice, never with credentials).
    cors_origins: list[str] = Field(
        default_factory=_local_dev_origins, validation_alias=env("CORS_ORIGINS")
    )
    cors_allow_credentials: bool = Field(False, validation_alias=env("CORS_ALLOW_CREDENTIALS"))
    # Empty: any Host. Set it (e.g. ["localhost", "127.0.0.1", "easel.example.com"]) so a
    # DNS name rebound to this machine cannot reach it.
    allowed_hosts: list[str] = Field(default_factory=list, validation_alias=env("ALLOWED_HOSTS"))
    frame_ancestors: str = Field("'none'", validation_alias=env("FRAME_ANCESTORS"))
    # The proxies (addresses or networks) whose X-Forwarded-For is believed for the
    # client's address (`easel.gateway.client_address`); none by default.
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list, validation_alias=env("TRUSTED_PROXIES")
    )

    # --- API keys (easel/gateway/auth) -------------------------------------------------
    # Unset: <data_dir>/keys.json. Written by `easel keys`; holds names, scopes and keyed
    # hashes, never a key.
    keys_file: Path | None = Field(None, validation_alias=env("KEYS_FILE"))
    # The secret the hashes are keyed with. Unset: a file beside the keys file
    # (`keys.pepper`, mode 0600), created by the first `easel keys create`.
    key_pepper: SecretStr | None = Field(None, validation_alias=env("KEY_PEPPER"))
    # Comma-separated keys for simple setups, each with every scope but admin.
    api_keys: SecretStr | None = Field(None, validation_alias=env("API_KEYS"))
    # The same, each with every scope, admin included: for deployments with no keys file
    # to write to (Modal's containers).
    admin_api_keys: SecretStr | None = Field(None, validation_alias=env("ADMIN_API_KEYS"))
    # With keys on: which gateway-own routes stay open to anyone.
    public_docs: bool = Field(True, validation_alias=env("PUBLIC_DOCS"))
    # The playground page at `/` (static files; always public: it holds no data, and asks
    # for a key when the server has keys on).
    playground: bool = Field(True, validation_alias=env("PLAYGROUND"))
    public_metrics: bool = Field(False, validation_alias=env("PUBLIC_METRICS"))
    public_health: bool = Field(False, validation_alias=env("PUBLIC_HEALTH"))
    # A bearer token a Prometheus scraper may send for /metrics instead of an admin key.
    metrics_token: SecretStr | None = Field(None, validation_alias=env("METRICS_TOKEN"))
    # Jobs a caller may have queued or running at once, unless its key says otherwise;
    # None: no limit.
    max_concurrent_jobs: int | None = Field(None, ge=1, validation_alias=env("MAX_CONCURRENT_JOBS"))

    @model_validator(mode="after")
    def _no_credentials_for_any_origin(self) -> Self:
        # Browsers refuse credentials with `Access-Control-Allow-Origin: *`; answering any
        # origin by name instead would hand every web page the user's credentials.
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError(
                "EASEL_CORS_ALLOW_CREDENTIALS=true cannot go with '*' in EASEL_CORS_ORIGINS:"
                " name the origins that may send credentials"
            )
        return self

    @property
    def keys_path(self) -> Path:
        return self.keys_file or self.data_dir / "keys.json"

    @property
    def pepper_path(self) -> Path:
        return self.keys_path.with_suffix(".pepper")
