"""CORS origins are explicit (local dev servers by default), credentials never go with `*`,
and the browser guard follows the same list, `*` included (issue 17, item 5)."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from easel.compose.settings import EaselSettings, SettingsError
from easel.gateway.app import create_app
from easel.gateway.browser_guard import BrowserGuardMiddleware
from easel.gateway.settings import LOCAL_DEV_ORIGINS, GatewaySettings


def test_the_default_origins_are_the_local_dev_servers() -> None:
    origins = GatewaySettings().cors_origins
    assert origins == list(LOCAL_DEV_ORIGINS)
    assert "http://localhost:5173" in origins and "http://127.0.0.1:3000" in origins
    assert GatewaySettings().cors_allow_credentials is False


def test_credentials_with_any_origin_are_refused_naming_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EASEL_CORS_ORIGINS", '["*"]')
    monkeypatch.setenv("EASEL_CORS_ALLOW_CREDENTIALS", "true")
    with pytest.raises(SettingsError) as caught:
        EaselSettings.load()
    line = str(caught.value)
    assert "EASEL_CORS_ALLOW_CREDENTIALS" in line and "EASEL_CORS_ORIGINS" in line
    monkeypatch.setenv("EASEL_CORS_ALLOW_CREDENTIALS", "false")
    assert EaselSettings.load().gateway.cors_origins == ["*"]


def _preflight(origin: str) -> dict[str, str]:
    return {"origin": origin, "access-control-request-method": "POST"}


async def test_credentials_are_allowed_to_named_origins_when_configured() -> None:
    friend = "https://app.example"
    settings = GatewaySettings(cors_origins=[friend], cors_allow_credentials=True)
    transport = httpx.ASGITransport(app=create_app(settings, []))
    async with httpx.AsyncClient(transport=transport, base_url="http://easel") as client:
        answer = await client.options("/api/generate/async", headers=_preflight(friend))
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == friend
    assert answer.headers["access-control-allow-credentials"] == "true"


async def test_without_credentials_the_preflight_grants_none() -> None:
    transport = httpx.ASGITransport(app=create_app(GatewaySettings(), []))
    async with httpx.AsyncClient(transport=transport, base_url="http://easel") as client:
        answer = await client.options(
            "/api/generate/async", headers=_preflight("http://localhost:5173")
        )
    assert answer.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "access-control-allow-credentials" not in answer.headers


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse(Request(scope).method)(scope, receive, send)


def _guarded(origins: list[str]) -> httpx.AsyncClient:
    app = BrowserGuardMiddleware(_ok, allowed_origins=origins)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://easel")


async def test_with_any_origin_configured_the_guard_lets_every_page_through() -> None:
    async with _guarded(["*"]) as client:
        for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
            assert (await client.post("/api/generate/async", headers=headers)).status_code == 200


async def test_a_refusal_is_one_audit_line(caplog: pytest.LogCaptureFixture) -> None:
    async with _guarded(list(LOCAL_DEV_ORIGINS)) as client:
        with caplog.at_level(logging.INFO, logger="easel.audit"):
            refused = await client.post(
                "/api/generate/cancel/abc", headers={"origin": "https://evil.example"}
            )
            allowed = await client.post(
                "/api/generate/cancel/abc", headers={"origin": "http://localhost:3000"}
            )
    assert refused.status_code == 403 and allowed.status_code == 200
    (line,) = [r for r in caplog.records if r.name == "easel.audit"]
    assert line.getMessage().startswith("audit origin refused key=-")
    assert "path=/api/generate/cancel/abc" in line.getMessage()
    assert "origin=https://evil.example" in line.getMessage()
