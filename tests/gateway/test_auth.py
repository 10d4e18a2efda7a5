"""API keys at the gateway (issue 17, item 1), through the all-in-one app in this process:
no key, a wrong or revoked one, a key without the route's scope; both headers; keys from
EASEL_API_KEYS; what stays public; the audit line and the counter of refusals."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from easel.cli import app as cli
from easel.core.identity import USER_SCOPES, ApiScope
from tests.gateway.keys_support import (
    bearer,
    clear_easel_env,
    gateway_client,
    make_key,
    settings_for,
)

WAIT = 30.0


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_easel_env(monkeypatch, tmp_path)


def assert_envelope(answer: httpx.Response, status: int, code: str, field: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code
    assert body["error"]["details"]["field"] == field
    assert body["request_id"] == answer.headers["x-request-id"]


async def test_without_a_key_a_keyed_route_is_401(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    make_key(settings, "ci", [ApiScope.JOBS])
    async with gateway_client(settings) as client:
        for path in ("/api/jobs", "/api/generate/status/" + "0" * 32, "/no/such/path"):
            answer = await client.get(path)
            assert_envelope(answer, 401, "unauthorized", "Authorization")
            assert answer.headers["www-authenticate"].startswith("Bearer")
        # Another scheme is no key either.
        basic = await client.get("/api/jobs", headers={"Authorization": "Basic dXNlcjpwdw=="})
        assert_envelope(basic, 401, "unauthorized", "Authorization")


async def test_a_key_works_in_either_header(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    key = make_key(settings, "ci", [ApiScope.JOBS])
    async with gateway_client(settings) as client:
        assert (await client.get("/api/jobs", headers=bearer(key))).status_code == 200
        assert (await client.get("/api/jobs", headers={"X-API-Key": key})).status_code == 200
        # Then (no key derivation, nothing re-read) the same key again.
        assert (await client.get("/api/jobs", headers=bearer(key))).status_code == 200


async def test_a_wrong_key_is_401_naming_its_header(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    key = make_key(settings, "ci", [ApiScope.JOBS])
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")  # the right id
    async with gateway_client(settings) as client:
        for wrong in (forged, "easel_000000000000_x", "not-a-key"):
            answer = await client.get("/api/jobs", headers={"X-API-Key": wrong})
            assert_envelope(answer, 401, "unauthorized", "X-API-Key")
            assert 'error="invalid_token"' in answer.headers["www-authenticate"]
            answer = await client.get("/api/jobs", headers=bearer(wrong))
            assert_envelope(answer, 401, "unauthorized", "Authorization")


async def test_a_key_without_the_routes_scope_is_403(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    key = make_key(settings, "reader", [ApiScope.JOBS])
    async with gateway_client(settings) as client:
        answer = await client.post(
            "/api/generate/async", json={"prompt": "a fox"}, headers=bearer(key)
        )
        assert_envelope(answer, 403, "forbidden", "Authorization")
        assert answer.json()["error"]["details"]["scope"] == "generate"
        assert "reader" in answer.json()["error"]["message"]
        answer = await client.post(
            "/api/image-utils/crop", json={"x": 0}, headers={"X-API-Key": key}
        )
        assert_envelope(answer, 403, "forbidden", "X-API-Key")


async def test_a_key_revoked_on_a_running_server_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command would set up this process's logging, bound to the runner's streams.
    monkeypatch.setattr("easel.cli.keys.configure_logging", lambda *args: None)
    settings = settings_for(tmp_path)
    runner = CliRunner()
    env = {"EASEL_DATA_DIR": str(tmp_path / "data")}
    created = runner.invoke(cli, ["keys", "create", "temp", "--scopes", "jobs"], env=env)
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    async with gateway_client(settings) as client:
        assert (await client.get("/api/jobs", headers=bearer(key))).status_code == 200
        revoked = runner.invoke(cli, ["keys", "revoke", "temp"], env=env)
        assert revoked.exit_code == 0, revoked.output
        # The gateway looks at the file about once a second: no restart.
        deadline = asyncio.get_running_loop().time() + WAIT
        while (answer := await client.get("/api/jobs", headers=bearer(key))).status_code == 200:
            assert asyncio.get_running_loop().time() < deadline, "the revoked key still works"
            await asyncio.sleep(0.05)
        assert_envelope(answer, 401, "unauthorized", "Authorization")


async def test_keys_from_the_environment_work_and_lack_admin(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, api_keys="first-secret-key, second-secret-key")
    async with gateway_client(settings) as client:
        for key in ("first-secret-key", "second-secret-key"):
            assert (await client.get("/api/jobs", headers=bearer(key))).status_code == 200
        assert (await client.get("/api/jobs", headers=bearer("third"))).status_code == 401
        health = await client.get("/api/system/health", headers=bearer("first-secret-key"))
        assert_envelope(health, 403, "forbidden", "Authorization")
        assert health.json()["error"]["details"]["scope"] == "admin"
        message = health.json()["error"]["message"]
        assert "key-" in message and "first-secret-key" not in message
    assert ApiScope.ADMIN not in USER_SCOPES


async def test_admin_keys_from_the_environment_have_every_scope(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        api_keys="user-secret-key, both-secret-key",
        admin_api_keys="admin-secret-key, both-secret-key",
    )
    async with gateway_client(settings) as client:
        user = await client.get("/api/system/health", headers=bearer("user-secret-key"))
        assert_envelope(user, 403, "forbidden", "Authorization")
        # A key in both lists is an admin key, once.
        for key in ("admin-secret-key", "both-secret-key"):
            health = await client.get("/api/system/health", headers=bearer(key))
            assert health.status_code == 200, (key, health.text)
            assert (await client.get("/api/jobs", headers=bearer(key))).status_code == 200
        assert (await client.get("/metrics", headers=bearer("admin-secret-key"))).status_code == 200
        wrong = await client.get("/api/system/health", headers=bearer("admin-secret-kex"))
        assert_envelope(wrong, 401, "unauthorized", "Authorization")


async def test_admin_keys_alone_turn_keys_on(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, admin_api_keys="admin-only-key")
    async with gateway_client(settings) as client:
        assert_envelope(await client.get("/api/jobs"), 401, "unauthorized", "Authorization")
        answer = await client.get("/api/jobs", headers=bearer("admin-only-key"))
        assert answer.status_code == 200, answer.text


async def test_liveness_stays_public(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, api_keys="k1")
    async with gateway_client(settings) as client:
        for path in ("/api/health", "/health"):
            assert (await client.get(path)).status_code == 200, path


async def test_docs_metrics_and_deep_health_by_default(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, api_keys="user-key")
    admin = make_key(settings, "ops", [ApiScope.ADMIN])
    async with gateway_client(settings) as client:
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert (await client.get(path)).status_code == 200, path
        for path in ("/metrics", "/api/system/health"):
            assert_envelope(await client.get(path), 401, "unauthorized", "Authorization")
            assert (await client.get(path, headers=bearer("user-key"))).status_code == 403
            assert (await client.get(path, headers=bearer(admin))).status_code == 200


async def test_docs_metrics_and_health_as_configured(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        api_keys="user-key",
        public_docs=False,
        public_metrics=True,
        public_health=True,
    )
    async with gateway_client(settings) as client:
        assert (await client.get("/openapi.json")).status_code == 401
        assert (await client.get("/openapi.json", headers=bearer("user-key"))).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/api/system/health")).status_code == 200


async def test_metrics_take_the_scrape_token(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, api_keys="user-key", metrics_token="scrape-me")
    async with gateway_client(settings) as client:
        scraped = await client.get("/metrics", headers=bearer("scrape-me"))
        assert scraped.status_code == 200
        assert 'easel_auth_requests_total{key="metrics-scraper",outcome="allowed"}' in scraped.text
        # The token is good for nothing else.
        assert (await client.get("/api/jobs", headers=bearer("scrape-me"))).status_code == 401
        assert (await client.get("/metrics", headers=bearer("wrong"))).status_code == 401


async def test_without_keys_everything_is_as_before(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    async with gateway_client(settings) as client:
        for path in ("/api/jobs", "/metrics", "/api/system/health", "/openapi.json"):
            assert (await client.get(path)).status_code == 200, path
        # A key sent anyway changes nothing.
        assert (await client.get("/api/jobs", headers=bearer("whatever"))).status_code == 200


async def test_a_refusal_is_audited_and_counted_without_the_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path, api_keys="user-key")
    admin = make_key(settings, "ops", [ApiScope.ADMIN])
    wrong = "easel_0123456789ab_this-is-a-wrong-secret"
    async with gateway_client(settings) as client:
        with caplog.at_level(logging.INFO, logger="easel.audit"):
            await client.get("/api/jobs", headers=bearer(wrong))
            await client.get("/api/jobs")
            await client.get("/api/system/health", headers=bearer("user-key"))
        metrics = (await client.get("/metrics", headers=bearer(admin))).text
    audits = [r for r in caplog.records if getattr(r, "audit", None) == "auth"]
    assert [(r.outcome, r.status, r.reason) for r in audits] == [  # type: ignore[attr-defined]
        ("refused", 401, "unknown"),
        ("refused", 401, "missing"),
        ("refused", 403, "scope"),
    ]
    assert audits[2].key_name.startswith("key-")  # type: ignore[attr-defined]
    for record in audits:
        text = record.getMessage() + repr(vars(record))
        assert "this-is-a-wrong-secret" not in text and "user-key" not in text
        assert record.path == ("/api/system/health" if record.status == 403 else "/api/jobs")  # type: ignore[attr-defined]
    assert 'easel_auth_requests_total{key="unknown",outcome="unauthorized"} 1.0' in metrics
    assert 'easel_auth_requests_total{key="anonymous",outcome="unauthorized"} 1.0' in metrics
    assert 'outcome="forbidden"} 1.0' in metrics
    assert 'easel_auth_requests_total{key="ops",outcome="allowed"}' in metrics


def test_the_document_states_the_key_check(tmp_path: Path) -> None:
    from easel.compose.gateway import create_gateway

    document = create_gateway(settings_for(tmp_path)).openapi()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerKey"]["scheme"] == "bearer"
    assert schemes["apiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert document["security"] == [{"bearerKey": []}, {"apiKeyHeader": []}]
    paths = document["paths"]
    for path, method in (
        ("/api/jobs", "get"),
        ("/api/generate/async", "post"),
        ("/api/system/health", "get"),
    ):
        responses = paths[path][method]["responses"]
        assert {"401", "403"} <= set(responses), path
        assert "WWW-Authenticate" in responses["401"]["headers"]
    for path in ("/api/health", "/health"):
        assert paths[path]["get"]["security"] == []
        assert "401" not in paths[path]["get"]["responses"]
