"""One HTTP client per service; only the transport differs between in-process and remote."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI

from easel.core.settings import ServiceEndpoint, Settings

IN_PROCESS_BASE_URL = "http://{name}.in-process"


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
        transport: httpx.AsyncBaseTransport = httpx.ASGITransport(
            app=app, raise_app_exceptions=False
        )
        base_url = IN_PROCESS_BASE_URL.format(name=endpoint.name.replace("_", "-"))
    else:
        assert endpoint.url is not None
        limits = httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
        )
        transport = httpx.AsyncHTTPTransport(limits=limits, retries=0)
        base_url = endpoint.url
    return httpx.AsyncClient(transport=transport, base_url=base_url, timeout=timeout)
