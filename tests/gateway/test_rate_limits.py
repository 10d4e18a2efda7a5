"""Rate limits at the gateway (issue 17, item 3), in-process: the N+1th request of a
minute gets 429 with `Retry-After` and the `RateLimit-*` headers; classes, keys and
addresses are counted apart; `X-Forwarded-For` counts only through a trusted proxy; a
Redis that is down lets requests through.

The gateway here routes to a small echo service; a stand-in for the auth middleware sets
the caller from a test header, as the real one does from the API key.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from easel.core.identity import ApiScope, Caller, caller_var
from easel.gateway.app import create_app
from easel.gateway.auth.config import key_admin
from easel.gateway.auth.middleware import ApiKeyMiddleware
from easel.gateway.settings import GatewaySettings, HealthMode, ServiceEndpoint
from easel.gateway.upstream import UpstreamService
from tests.support.redis_server import redis_keys
from tests.support.servers import free_port

PREFIXES = ("/api/generate", "/api/jobs", "/api/image-utils", "/api/smart-mask")
GENERATE = "/api/generate/validate"
JOBS = "/api/jobs"
UTILS = "/api/image-utils/resize"
HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")
CALLER = "x-test-caller"
# The callers the stand-in for the auth middleware can set, by name.
CALLERS = {
    "alice": Caller(name="alice"),
    "bob": Caller(name="bob"),
    "slow": Caller(name="slow", requests_per_minute=1),
}


def echo_service() -> FastAPI:
    """Answers every path with what it was sent."""
    app = FastAPI()

    @app.api_route("/{rest:path}", methods=["GET", "POST"])
    async def echo(request: Request) -> dict[str, Any]:
        return {"path": request.url.path, "forwarded_for": request.headers.get("x-forwarded-for")}

    return app


class CallerFromHeader:
    """Stands in for the auth middleware: the caller named in `x-test-caller`, if any."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        named = dict(scope.get("headers", ())).get(CALLER.encode())
        if scope["type"] != "http" or named is None:
            await self.app(scope, receive, send)
            return
        token = caller_var.set(CALLERS[named.decode()])
        try:
            await self.app(scope, receive, send)
        finally:
            caller_var.reset(token)


Client = Callable[..., httpx.AsyncClient]


@asynccontextmanager
async def running_gateway(tmp_path: Path, **settings: Any) -> AsyncIterator[Client]:
    """A gateway (its lifespan run) and a factory of clients, each from a peer address."""
    endpoint = ServiceEndpoint("echo", None, HealthMode.ACTIVE, timeout=10)
    upstream = UpstreamService(
        endpoint=endpoint, prefixes=PREFIXES, openapi=dict, app=echo_service()
    )
    app = create_app(GatewaySettings(data_dir=tmp_path, **settings), [upstream])
    # Just inside the real auth middleware (keys off here: it sets the anonymous caller),
    # as if it had authenticated the caller named in the test header.
    auth = next(i for i, m in enumerate(app.user_middleware) if m.cls is ApiKeyMiddleware)
    app.user_middleware.insert(auth + 1, Middleware(CallerFromHeader))
    wrapped = app
    clients: list[httpx.AsyncClient] = []

    def client(peer: str = "198.51.100.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=wrapped, client=(peer, 50000))
        opened = httpx.AsyncClient(transport=transport, base_url="http://gateway")
        clients.append(opened)
        return opened

    async with app.router.lifespan_context(app):
        try:
            yield client
        finally:
            for opened in clients:
                await opened.aclose()


@pytest.fixture()
def gateway(tmp_path: Path) -> Callable[..., Any]:
    return lambda **settings: running_gateway(tmp_path, **settings)


async def allowed(client: httpx.AsyncClient, path: str, count: int, **headers: str) -> None:
    for _ in range(count):
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, response.text


def assert_refused(response: httpx.Response, route_class: str, limit: int) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["error"]["code"] == "too_many_requests"
    assert body["error"]["details"]["route_class"] == route_class
    assert body["error"]["details"]["limit"] == limit
    assert body["request_id"] == response.headers["x-request-id"]
    assert response.headers["ratelimit-limit"] == str(limit)
    assert response.headers["ratelimit-remaining"] == "0"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert response.headers["ratelimit-reset"] == str(retry_after)


async def test_the_request_past_the_limit_gets_429_with_the_headers(
    gateway: Callable[..., Any],
) -> None:
    async with gateway(rate_limit_generate=3) as client:
        api = client()
        for remaining in (2, 1, 0):
            response = await api.get(GENERATE)
            assert response.status_code == 200, response.text
            assert response.headers["ratelimit-limit"] == "3"
            assert response.headers["ratelimit-remaining"] == str(remaining)
            assert 1 <= int(response.headers["ratelimit-reset"]) <= 60
            assert "retry-after" not in response.headers
        assert_refused(await api.post(GENERATE, json={}), "generate", 3)
        assert_refused(await api.get(GENERATE), "generate", 3)


async def test_route_classes_are_counted_apart(gateway: Callable[..., Any]) -> None:
    async with gateway(rate_limit_generate=1, rate_limit_jobs=2, rate_limit_utils=2) as client:
        api = client()
        await allowed(api, GENERATE, 1)
        assert (await api.get(GENERATE)).status_code == 429
        await allowed(api, JOBS, 2)
        await allowed(api, UTILS, 2)
        assert_refused(await api.get(JOBS), "jobs", 2)
        assert_refused(await api.get(UTILS), "utils", 2)


async def test_liveness_health_is_never_limited(gateway: Callable[..., Any]) -> None:
    async with gateway(rate_limit_system=1, rate_limit_other=1) as client:
        api = client()
        for path in ("/api/health", "/health") * 3:
            response = await api.get(path)
            assert response.status_code == 200
            assert not set(HEADERS) & set(response.headers)
        await allowed(api, "/metrics", 1)  # system: limited
        assert_refused(await api.get("/metrics"), "system", 1)
        assert (await api.get("/no-such-path")).headers["ratelimit-limit"] == "1"
        assert_refused(await api.get("/no-such-path"), "other", 1)


async def test_each_key_has_its_own_count(gateway: Callable[..., Any]) -> None:
    async with gateway(rate_limit_generate=2) as client:
        api = client()
        await allowed(api, GENERATE, 2, **{CALLER: "alice"})
        assert_refused(await api.get(GENERATE, headers={CALLER: "alice"}), "generate", 2)
        # Same address, another key; and the address itself, anonymous.
        await allowed(api, GENERATE, 2, **{CALLER: "bob"})
        await allowed(api, GENERATE, 2)


async def test_a_keys_own_limit_replaces_the_default(gateway: Callable[..., Any]) -> None:
    async with gateway(rate_limit_generate=5, rate_limit_jobs=5) as client:
        api = client()
        await allowed(api, GENERATE, 1, **{CALLER: "slow"})
        assert_refused(await api.get(GENERATE, headers={CALLER: "slow"}), "generate", 1)
        await allowed(api, JOBS, 1, **{CALLER: "slow"})
        assert_refused(await api.get(JOBS, headers={CALLER: "slow"}), "jobs", 1)


async def test_keys_from_the_keys_file_are_limited_by_their_own_limit(tmp_path: Path) -> None:
    """No stand-in: real keys, authenticated by the real middleware, counted apart."""
    admin = key_admin(GatewaySettings(data_dir=tmp_path))
    _, slow = admin.create("slow", [ApiScope.GENERATE], requests_per_minute=1)
    _, busy = admin.create("busy", [ApiScope.GENERATE])
    async with running_gateway(tmp_path, rate_limit_generate=3) as client:
        api = client()
        await allowed(api, GENERATE, 1, authorization=f"Bearer {slow}")
        refused = await api.get(GENERATE, headers={"authorization": f"Bearer {slow}"})
        assert_refused(refused, "generate", 1)
        await allowed(api, GENERATE, 3, authorization=f"Bearer {busy}")
        assert_refused(await api.get(GENERATE, headers={"x-api-key": busy}), "generate", 3)


async def test_anonymous_callers_are_counted_by_address(gateway: Callable[..., Any]) -> None:
    async with gateway(rate_limit_generate=1) as client:
        first, second = client("198.51.100.1"), client("198.51.100.2")
        await allowed(first, GENERATE, 1)
        assert (await first.get(GENERATE)).status_code == 429
        await allowed(second, GENERATE, 1)
        # One IPv6 client holds a /64: its addresses share one count.
        await allowed(client("2001:db8:1:1::1"), GENERATE, 1)
        assert (await client("2001:db8:1:1::2").get(GENERATE)).status_code == 429
        await allowed(client("2001:db8:1:2::1"), GENERATE, 1)


async def test_forwarded_for_counts_only_through_a_trusted_proxy(
    gateway: Callable[..., Any],
) -> None:
    async with gateway(rate_limit_generate=1, trusted_proxies=["10.0.0.0/8"]) as client:
        proxy = client("10.0.0.2")
        for address in ("198.51.100.7", "198.51.100.8"):
            response = await proxy.get(GENERATE, headers={"x-forwarded-for": address})
            assert response.status_code == 200, response.text
            assert response.json()["forwarded_for"] == f"{address}, 10.0.0.2"
        refused = await proxy.get(GENERATE, headers={"x-forwarded-for": "198.51.100.7"})
        assert refused.status_code == 429
        # A client's own claim: ignored (not counted by, not passed on).
        direct = client("203.0.113.9")
        response = await direct.get(GENERATE, headers={"x-forwarded-for": "198.51.100.9"})
        assert response.json()["forwarded_for"] == "203.0.113.9"
        refused = await direct.get(GENERATE, headers={"x-forwarded-for": "198.51.100.10"})
        assert refused.status_code == 429


async def test_a_refusal_is_counted_and_audited(
    gateway: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="easel.audit")
    async with gateway(rate_limit_generate=1) as client:
        api = client("198.51.100.3")
        await allowed(api, GENERATE, 1, **{CALLER: "alice"})
        await allowed(api, GENERATE, 1)
        for _ in range(2):
            assert (await api.get(GENERATE, headers={CALLER: "alice"})).status_code == 429
        assert (await api.get(GENERATE)).status_code == 429
        metrics = (await api.get("/metrics")).text
    assert 'easel_rate_limited_requests_total{key="alice",route_class="generate"} 2.0' in metrics
    assert 'easel_rate_limited_requests_total{key="anonymous",route_class="generate"} 1.0' in (
        metrics
    )
    assert "198.51.100.3" not in metrics  # never an address as a label
    lines = [r for r in caplog.records if getattr(r, "audit", None) == "rate_limit"]
    assert [(r.key_name, r.outcome) for r in lines] == [  # type: ignore[attr-defined]
        ("alice", "refused"),
        ("alice", "refused"),
        (None, "refused"),
    ]
    assert lines[-1].client == "198.51.100.3"  # type: ignore[attr-defined]


async def test_switched_off_nothing_is_limited(gateway: Callable[..., Any]) -> None:
    async with gateway(rate_limits=False, rate_limit_generate=1) as client:
        api = client()
        for _ in range(3):
            response = await api.get(GENERATE)
            assert response.status_code == 200
            assert not set(HEADERS) & set(response.headers)


async def test_a_class_set_to_zero_is_not_limited(gateway: Callable[..., Any]) -> None:
    async with gateway(rate_limit_utils=0, rate_limit_generate=1) as client:
        api = client()
        for _ in range(3):
            assert not set(HEADERS) & set((await api.get(UTILS)).headers)


async def test_the_loopback_defaults_are_ten_times_the_public_ones(
    gateway: Callable[..., Any],
) -> None:
    async with gateway() as client:
        assert (await client().get(GENERATE)).headers["ratelimit-limit"] == "600"
    async with gateway(host="0.0.0.0") as client:  # noqa: S104
        assert (await client().get(GENERATE)).headers["ratelimit-limit"] == "60"


async def test_counts_in_redis(
    gateway: Callable[..., Any], redis_url: str, redis_prefix: str
) -> None:
    settings = {"rate_limit_redis_url": redis_url, "rate_limit_redis_prefix": redis_prefix}
    async with gateway(rate_limit_generate=2, **settings) as client:
        await allowed(client(), GENERATE, 2)
        assert_refused(await client().get(GENERATE), "generate", 2)
    assert await redis_keys(redis_url, redis_prefix)


async def test_a_redis_that_is_down_lets_requests_through(
    gateway: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="easel.gateway.rate_limits")
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    async with gateway(rate_limit_generate=1, rate_limit_redis_url=nobody) as client:
        for _ in range(4):
            response = await client().get(GENERATE)
            assert response.status_code == 200, response.text
            assert not set(HEADERS) & set(response.headers)
    warnings = [r for r in caplog.records if r.name == "easel.gateway.rate_limits"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "unreachable" in warnings[0].getMessage()


async def test_cors_exposes_the_headers(gateway: Callable[..., Any]) -> None:
    origin = "http://localhost:5173"
    async with gateway(cors_origins=[origin]) as client:
        response = await client().get(GENERATE, headers={"origin": origin})
    exposed = response.headers["access-control-expose-headers"].lower()
    assert {"retry-after", *HEADERS} <= {h.strip() for h in exposed.split(",")}


def test_the_document_names_the_429(tmp_path: Path) -> None:
    endpoint = ServiceEndpoint("echo", None, HealthMode.ACTIVE, timeout=10)

    def service_document() -> dict[str, Any]:
        return {"paths": {GENERATE: {"post": {"responses": {"200": {"description": "ok"}}}}}}

    upstream = UpstreamService(
        endpoint=endpoint, prefixes=PREFIXES, openapi=service_document, app=echo_service()
    )
    document = create_app(GatewaySettings(data_dir=tmp_path), [upstream]).openapi()
    refused = document["paths"][GENERATE]["post"]["responses"]["429"]
    assert {"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(
        refused["headers"]
    )
    assert "429" in document["paths"]["/api/system/health"]["get"]["responses"]
    assert "429" not in document["paths"]["/api/health"]["get"]["responses"]
    off = create_app(GatewaySettings(data_dir=tmp_path, rate_limits=False), [upstream]).openapi()
    assert "429" not in off["paths"][GENERATE]["post"]["responses"]
