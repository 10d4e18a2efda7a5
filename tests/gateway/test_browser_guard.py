"""No cross-site browser request may change anything (issue 17, item 5), over real HTTP.

A cross-site form POST, text/plain or multipart upload, or a bodyless POST needs no
preflight: each is refused with 403 in the envelope when its `Origin` is neither this
server nor an allowed one; the same request without `Origin` (curl, the SDK) goes on to
its service; an allowed origin's JSON request after a preflight works.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from easel.gateway.browser_guard import _hostname
from tests.support.images import b64, noise_image
from tests.support.servers import ServerProcess, start_server

EVIL = "https://evil.example"
FRIEND = "http://localhost:5173"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("browser")
    env = {
        "EASEL_CORS_ORIGINS": f'["{FRIEND}"]',
        "EASEL_JOBS_IN_PROCESS_WORKER": "false",
        "EASEL_JOBS_SUBMIT_CHECK": "false",
    }
    server = start_server("all", tmp, env=env)
    yield server
    server.stop()


def crop_fields() -> dict[str, str]:
    return {"image": b64(noise_image(8, 8)), "x": "0", "y": "0", "width": "4", "height": "4"}


CROSS_SITE: list[tuple[str, str, dict[str, Any]]] = [
    ("form", "/api/generate/async", {"data": {"prompt": "a fox"}}),
    ("text/plain", "/api/generate/async", {"content": b'{"prompt": "a fox"}'}),
    ("multipart", "/api/image-utils/crop", {"files": {"image": ("x.png", b"\x89PNG")}}),
    ("bodyless", "/api/generate/cancel/0123456789abcdef", {}),
    ("form", "/api/image-utils/crop", {"data": crop_fields()}),
]


def _post(
    server: ServerProcess, path: str, kwargs: dict[str, Any], **headers: str
) -> httpx.Response:
    kwargs = dict(kwargs)
    if "content" in kwargs:
        headers.setdefault("content-type", "text/plain")
    return httpx.post(f"{server.url}{path}", headers=headers, timeout=60, **kwargs)


@pytest.mark.parametrize(("kind", "path", "kwargs"), CROSS_SITE)
def test_a_cross_site_request_is_refused(
    server: ServerProcess, kind: str, path: str, kwargs: dict[str, Any]
) -> None:
    refused = _post(server, path, kwargs, origin=EVIL)
    assert refused.status_code == 403, (kind, refused.text)
    error = refused.json()["error"]
    assert error["code"] == "forbidden" and error["details"]["field"] == "Origin"
    assert "x-request-id" in refused.headers


@pytest.mark.parametrize(("kind", "path", "kwargs"), CROSS_SITE)
def test_sec_fetch_site_cross_site_without_origin_is_refused(
    server: ServerProcess, kind: str, path: str, kwargs: dict[str, Any]
) -> None:
    refused = _post(server, path, kwargs, **{"sec-fetch-site": "cross-site"})
    assert refused.status_code == 403, (kind, refused.text)


@pytest.mark.parametrize(("kind", "path", "kwargs"), CROSS_SITE)
def test_the_same_request_without_origin_reaches_its_service(
    server: ServerProcess, kind: str, path: str, kwargs: dict[str, Any]
) -> None:
    answered = _post(server, path, kwargs)
    assert answered.status_code != 403, (kind, answered.text)
    assert answered.status_code < 500, (kind, answered.text)


def test_the_servers_own_origin_and_an_allowed_one_pass(server: ServerProcess) -> None:
    for origin in (server.url, FRIEND):
        answered = _post(server, "/api/image-utils/crop", {"data": crop_fields()}, origin=origin)
        assert answered.status_code == 200, (origin, answered.text)


def test_an_allowed_origin_after_a_preflight_submits_json(server: ServerProcess) -> None:
    preflight = httpx.options(
        f"{server.url}/api/generate/async",
        headers={
            "origin": FRIEND,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == FRIEND
    submitted = httpx.post(
        f"{server.url}/api/generate/async",
        json={"prompt": "a fox", "steps": 2},
        headers={"origin": FRIEND},
        timeout=60,
    )
    assert submitted.status_code == 202, submitted.text
    assert submitted.headers["access-control-allow-origin"] == FRIEND


def test_reads_are_not_refused_for_their_origin(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/api/health", headers={"origin": EVIL}).status_code == 200


def test_a_null_origin_is_refused(server: ServerProcess) -> None:
    refused = _post(server, "/api/image-utils/crop", {"data": crop_fields()}, origin="null")
    assert refused.status_code == 403, refused.text


def test_a_host_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    hosts = '["localhost", "127.0.0.1"]'
    server = start_server("gateway", tmp_path, env={"EASEL_ALLOWED_HOSTS": hosts})
    try:
        # A name rebound to 127.0.0.1 arrives with its own Host.
        refused = httpx.get(f"{server.url}/api/health", headers={"host": "evil.example"})
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["details"]["field"] == "Host"
        allowed = httpx.get(f"{server.url}/api/health", headers={"host": "localhost"})
        assert allowed.status_code == 200, allowed.text
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("localhost:8000", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]:8000", "[::1]"),
        ("[::1]", "[::1]"),
        ("easel.example.com:443", "easel.example.com"),
    ],
)
def test_the_host_allow_list_reads_the_name_without_its_port(host: str, name: str) -> None:
    assert _hostname(host) == name
