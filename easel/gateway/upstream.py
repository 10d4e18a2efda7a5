"""One HTTP client per service; only the transport differs between in-process and remote."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import Cookie, CookieJar
from typing import Any

import httpx
from fastapi import FastAPI

from easel.core.clients import InternalAuth, in_process_client
from easel.core.internal_guard import configured_token, proxy_headers
from easel.core.tracing import trace_hooks
from easel.gateway.http1.transport import Http1Transport
from easel.gateway.senders import Http1Sender, HttpxSender, Sender
from easel.gateway.settings import GatewaySettings, ServiceEndpoint

# Idle pooled connections are dropped before a service's own keep-alive timeout (uvicorn: 5 s)
# closes them, so a request never goes out on a connection the service is closing (a 502).
KEEPALIVE_EXPIRY = 4.0


class _RefusingJar(CookieJar):
    def set_cookie(self, cookie: Cookie) -> None:
        return None


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing. A cookie a service sets is for the client it answers (the
    Set-Cookie header passes through to it), not the gateway's to keep and send on with
    every other client's requests. Not extracting at all also spares each proxied response
    httpx's cookie parsing, which builds urllib request and response stand-ins (~5% of the
    gateway's CPU on a small request)."""

    def __init__(self) -> None:
        super().__init__(_RefusingJar())

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class UpstreamClient(httpx.AsyncClient):
    """The gateway's client of a remote service: httpx's, with no cookie jar. It keeps
    its transport and signer at hand for the proxy's sender (`build_sender`)."""

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport,
        auth: InternalAuth | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(transport=transport, auth=auth, **kwargs)
        self.remote_transport = transport
        self.signer = auth
        self._no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise AttributeError("the gateway's upstream clients keep no cookies")


@dataclass(frozen=True)
class UpstreamService:
    """One service the gateway routes to, as the composition hands it over."""

    endpoint: ServiceEndpoint
    prefixes: tuple[str, ...]  # paths the gateway forwards to it
    openapi: Callable[[], dict[str, Any]]  # its OpenAPI document, for the gateway's /docs
    # In-process: the app the gateway calls through an ASGI transport and whose lifespan
    # it runs, in the order the upstreams are given. None for a remote service.
    app: FastAPI | None = None


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
    client: httpx.AsyncClient  # health probes
    sender: Sender  # proxied requests
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


def _remote_transport(
    url: str, settings: GatewaySettings, limits: httpx.Limits, timeout: httpx.Timeout
) -> httpx.AsyncBaseTransport:
    if settings.upstream_client == "httptools":
        return Http1Transport(url, limits=limits, timeout=timeout)
    if settings.upstream_client == "aiohttp":
        # Imported here: a gateway configured for httpx never loads aiohttp.
        from easel.gateway.aiohttp_transport import AiohttpTransport

        return AiohttpTransport(limits=limits)
    return httpx.AsyncHTTPTransport(limits=limits, retries=0)


def build_client(
    endpoint: ServiceEndpoint, settings: GatewaySettings, app: FastAPI | None
) -> httpx.AsyncClient:
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=endpoint.timeout,
        write=endpoint.timeout,
        pool=endpoint.timeout,
    )
    # Health probes and forwarded requests alike carry the caller and the credential.
    token = configured_token(settings)
    if app is not None:
        return in_process_client(app, endpoint.name, timeout=timeout, token=token)
    assert endpoint.url is not None
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_connections,
        keepalive_expiry=KEEPALIVE_EXPIRY,
    )
    return UpstreamClient(
        transport=_remote_transport(endpoint.url, settings, limits, timeout),
        base_url=endpoint.url,
        timeout=timeout,
        auth=InternalAuth(token, proxy_headers(settings)),
        event_hooks=trace_hooks(),  # the trace of the request proxied (or probe made)
    )


def build_sender(client: httpx.AsyncClient) -> Sender:
    """The proxy's way to the service: straight into the HTTP/1.1 pool of `client`'s
    transport when it has one (the same connections as the probes), else through httpx."""
    if (
        isinstance(client, UpstreamClient)
        and isinstance(client.remote_transport, Http1Transport)
        and client.signer is not None
    ):
        return Http1Sender(client.remote_transport.pool, client.signer)
    return HttpxSender(client)
