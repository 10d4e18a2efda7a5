"""The service side of internal auth (`easel/core/internal_guard.py`) on an app built like
every service's, and the signing client (`easel/core/clients.py`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import SecretStr

from easel.core.asgi_transport import StreamingASGITransport
from easel.core.clients import calling_as, in_process_client
from easel.core.identity import (
    ALL_SCOPES,
    CALLER_HEADER,
    LOCAL_CALLER,
    ApiScope,
    Caller,
    current_caller,
)
from easel.core.internal_auth import INTERNAL_HEADER, internal_credential, outbound_headers
from easel.core.internal_guard import UNVOUCHED, bind_refusal, trusted_caller
from easel.core.settings import SharedSettings
from tests.support.guarded_service import guarded_service, shown

TOKEN = "the-pods-token"
ALICE = Caller(name="alice", scopes=frozenset({ApiScope.GENERATE}))
ADMIN = Caller(name="root-key", scopes=ALL_SCOPES)


def echo_service(tmp_path: Path, token: str | None) -> FastAPI:
    """A service that says whom it believes the request comes from, on a protected path
    and on the open liveness path."""
    router = APIRouter()

    @router.get("/whoami")
    async def whoami() -> dict[str, Any]:
        return shown(current_caller())

    @router.get("/api/health")
    async def health() -> dict[str, Any]:
        return {"status": "healthy", "caller": shown(current_caller())}

    return guarded_service(tmp_path, token, router, "echo")


def unsigned(app: FastAPI) -> httpx.AsyncClient:
    """A client that sends only what a test gives it: no signer."""
    return httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://echo")


# ---- no token: in-process or loopback --------------------------------------------------
async def test_without_a_token_every_request_passes_as_the_local_caller(tmp_path: Path) -> None:
    async with unsigned(echo_service(tmp_path, None)) as client:
        response = await client.get("/whoami")
        assert response.status_code == 200, response.text
        assert response.json() == shown(LOCAL_CALLER)
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200


async def test_without_a_token_the_caller_header_is_believed(tmp_path: Path) -> None:
    async with unsigned(echo_service(tmp_path, None)) as client:
        response = await client.get("/whoami", headers={CALLER_HEADER: ALICE.to_header()})
        assert response.json() == shown(ALICE)
        unreadable = await client.get("/whoami", headers={CALLER_HEADER: "{not json"})
        assert unreadable.json() == shown(UNVOUCHED)  # nothing, not every scope
        newer = Caller("alice", frozenset()).to_header().replace("[]", '["paint"]')
        unknown_scope = await client.get("/whoami", headers={CALLER_HEADER: newer})
        assert unknown_scope.json() == shown(UNVOUCHED)


# ---- with a token ------------------------------------------------------------------------
def refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"]["code"] == "internal_unauthorized"
    assert "X-Easel-Internal" in body["error"]["message"]
    assert body["error"]["details"] == {"header": "X-Easel-Internal", "reason": reason}
    assert body["request_id"] == response.headers["x-request-id"]


async def test_with_a_token_a_request_without_the_credential_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="easel.audit")
    async with unsigned(echo_service(tmp_path, TOKEN)) as client:
        refused(await client.get("/whoami"), "missing")
        for path in ("/metrics", "/docs", "/openapi.json", "/no-such-path"):
            refused(await client.get(path), "missing")
        refused(await client.post("/whoami", content=b"x" * 1000), "missing")
    lines = [r for r in caplog.records if r.name == "easel.audit"]
    assert lines and all(r.getMessage().startswith("audit internal_auth refused") for r in lines)
    assert "path=/whoami" in lines[0].getMessage() and "service=echo" in lines[0].getMessage()


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(outbound_headers("another-token", ALICE), id="made-from-another-token"),
        pytest.param(
            {
                CALLER_HEADER: ALICE.to_header(),
                INTERNAL_HEADER: internal_credential(
                    TOKEN, ALICE.to_header(), now=time.time() - 301
                ),
            },
            id="expired",
        ),
        pytest.param(
            {
                CALLER_HEADER: ADMIN.to_header(),
                INTERNAL_HEADER: internal_credential(TOKEN, ALICE.to_header()),
            },
            id="made-for-another-caller",
        ),
        pytest.param({INTERNAL_HEADER: TOKEN}, id="the-token-itself"),
    ],
)
async def test_with_a_token_a_bad_credential_is_refused(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    async with unsigned(echo_service(tmp_path, TOKEN)) as client:
        refused(await client.get("/whoami", headers=headers), "invalid")


async def test_with_a_token_a_valid_credential_passes_with_its_caller(tmp_path: Path) -> None:
    async with unsigned(echo_service(tmp_path, TOKEN)) as client:
        response = await client.get("/whoami", headers=outbound_headers(TOKEN, ALICE))
        assert response.status_code == 200, response.text
        assert response.json() == shown(ALICE)
        # No caller header (a worker's own call, health probes): the local caller.
        bare = await client.get("/whoami", headers=outbound_headers(TOKEN, None))
        assert bare.json() == shown(LOCAL_CALLER)
        assert (await client.get("/metrics", headers=outbound_headers(TOKEN))).status_code == 200
    assert current_caller() == LOCAL_CALLER  # the request's caller did not leak out


async def test_a_forged_caller_without_the_credential_is_ignored(tmp_path: Path) -> None:
    forged = {CALLER_HEADER: ADMIN.to_header()}
    async with unsigned(echo_service(tmp_path, TOKEN)) as client:
        refused(await client.get("/whoami", headers=forged), "missing")
        # Liveness stays open, but nobody vouched for this caller: it is nobody.
        health = await client.get("/api/health", headers=forged)
        assert health.status_code == 200, health.text
        assert health.json()["caller"] == shown(UNVOUCHED)
        signed = await client.get("/api/health", headers=outbound_headers(TOKEN, ALICE))
        assert signed.json()["caller"] == shown(ALICE)


def test_trusted_caller_is_the_one_place_that_reads_the_headers() -> None:
    assert trusted_caller({}, None, max_age=300) == LOCAL_CALLER
    assert trusted_caller({}, TOKEN, max_age=300) is None
    assert trusted_caller(outbound_headers(TOKEN, ALICE), TOKEN, max_age=300) == ALICE
    # A signed header that does not parse grants nothing (not the local operator's all).
    odd = {CALLER_HEADER: "[]", INTERNAL_HEADER: internal_credential(TOKEN, "[]")}
    assert trusted_caller(odd, TOKEN, max_age=300) == UNVOUCHED


# ---- the signing client --------------------------------------------------------------------
async def test_a_service_client_signs_each_request_for_the_caller_of_its_context(
    tmp_path: Path,
) -> None:
    app = echo_service(tmp_path, TOKEN)
    async with in_process_client(app, "echo", token=TOKEN) as client:
        assert (await client.get("/whoami")).json() == shown(LOCAL_CALLER)
        with calling_as(ALICE):
            # Headers set on the request by hand are replaced, not signed.
            forged = {CALLER_HEADER: ADMIN.to_header(), INTERNAL_HEADER: "v1.0.forged"}
            response = await client.get("/whoami", headers=forged)
        assert response.status_code == 200, response.text
        assert response.json() == shown(ALICE)
    async with in_process_client(app, "echo", token="not-the-token") as wrong:
        refused(await wrong.get("/whoami"), "invalid")


async def test_without_a_token_the_client_still_says_who_calls(tmp_path: Path) -> None:
    async with in_process_client(echo_service(tmp_path, None), "echo") as client:
        with calling_as(ALICE):
            assert (await client.get("/whoami")).json() == shown(ALICE)


# ---- start-up -----------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_a_service_may_serve_on_loopback_without_a_token(tmp_path: Path, host: str) -> None:
    assert bind_refusal(SharedSettings(data_dir=tmp_path), "image-utils", host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com"])  # noqa: S104
def test_a_service_off_loopback_needs_a_token(tmp_path: Path, host: str) -> None:
    problem = bind_refusal(SharedSettings(data_dir=tmp_path), "image-utils", host)
    assert problem is not None
    assert "EASEL_INTERNAL_TOKEN" in problem and "EASEL_ALLOW_UNAUTHENTICATED" in problem
    with_token = SharedSettings(data_dir=tmp_path, internal_token=SecretStr(TOKEN))
    assert bind_refusal(with_token, "image-utils", host) is None


def test_allowing_unauthenticated_serves_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = SharedSettings(data_dir=tmp_path, allow_unauthenticated=True)
    with caplog.at_level(logging.WARNING, logger="easel.internal_auth"):
        assert bind_refusal(settings, "image-utils", "0.0.0.0") is None  # noqa: S104
    assert any("without EASEL_INTERNAL_TOKEN" in r.getMessage() for r in caplog.records)
