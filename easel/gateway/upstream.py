"""One HTTP client per service; only the transport differs between in-process and remote."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI

from easel.core.asgi_transport import StreamingASGITransport
from easel.core.settings import ServiceEndpoint, Settings

IN_PROCESS_BASE_URL = "http://{name}.in-process"
# Idle pooled connections are dropped before a service's own keep-alive timeout (uvicorn: 5 s)
# closes them, so a request never goes out on a connection the service is closing (a 502).
KEEPALIVE_EXPIRY = 4.0


@dataclass
class LastOutcome:
    """The most recent real request to a service: what passive health is derived from."""

    ok: bool
    at: float  # time.monotonic()
    latency_ms: float
    detail: str


@dataclass
class Upstream:
    endpoint: ServiceEndpoint
    client: httpx.AsyncClient
    last: LastOutcome | None = field(default=None)

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def location(self) -> str:
        return self.endpoint.url or "in-process"

    def record(self, *, ok: bool, started: float, detail: str = "") -> None:
        now = time.monotonic()
        self.last = LastOutcome(ok=ok, at=now, latency_ms=(now - started) * 1000, detail=detail)


def _remote_transport(settings: Settings, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    if settings.upstream_client == "aiohttp":
        # Imported here: a gateway configured for httpx never loads aiohttp.
        from easel.gateway.aiohttp_transport import AiohttpTransport

        return AiohttpTransport(limits=limits)
    return httpx.AsyncHTTPTransport(limits=limits, retries=0)


def build_client(
    endpoint: ServiceEndpoint, settings: Settings, app: FastAPI | None
) -> httpx.AsyncClient:
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=endpoint.timeout,
        write=endpoint.timeout,
        pool=endpoint.timeout,
    )
    if app is not None:
        # Streams both ways and passes disconnects on, unlike httpx.ASGITransport.
        transport: httpx.AsyncBaseTransport = StreamingASGITransport(app)
        base_url = IN_PROCESS_BASE_URL.format(name=endpoint.name.replace("_", "-"))
    else:
        assert endpoint.url is not None
        limits = httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        )
        transport = _remote_transport(settings, limits)
        base_url = endpoint.url
    return httpx.AsyncClient(transport=transport, base_url=base_url, timeout=timeout)
