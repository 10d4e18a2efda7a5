"""A path with dot segments is refused before the key check reads it (issue 17): the
service would receive the resolved path, a route of another scope than the one checked."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from easel.compose.gateway import create_gateway
from easel.compose.services import SERVICES
from easel.core.identity import ApiScope
from easel.gateway.path_guard import has_dot_segment
from easel.gateway.route_classes import RouteClass, classify
from tests.gateway.keys_support import bearer, clear_easel_env, make_key, settings_for


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_easel_env(monkeypatch, tmp_path)


def as_sent_raw(app: ASGIApp) -> ASGIApp:
    """httpx resolves dot segments before sending; curl --path-as-is and raw sockets do
    not, and uvicorn passes them on. `DOT` in a test path stands for a `..` segment."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "DOT" in scope["path"]:
            scope = {
                **scope,
                "path": scope["path"].replace("DOT", ".."),
                "raw_path": scope["raw_path"].replace(b"DOT", b".."),
            }
        await app(scope, receive, send)

    return wrapped


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/jobs", False),
        ("/api/generate/status/..", True),
        ("/api/generate/status/../async", True),
        ("/api/./jobs", True),
        ("/api/generate/status/a..b", False),
        ("/api/image-utils/.hidden", False),
    ],
)
def test_dot_segments_are_found(path: str, expected: bool) -> None:
    assert has_dot_segment(path) is expected


async def test_a_dot_segment_cannot_reach_a_route_of_another_scope(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, jobs_submit_check=False)
    reader = make_key(settings, "reader", [ApiScope.JOBS])
    maker = make_key(settings, "maker", [ApiScope.GENERATE])
    root = make_key(settings, "root", [ApiScope.JOBS, ApiScope.ADMIN])
    gateway = create_gateway(settings)
    async with gateway.router.lifespan_context(gateway):
        transport = httpx.ASGITransport(app=as_sent_raw(gateway))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            direct = await client.post(
                "/api/generate/async", json={"prompt": "x"}, headers=bearer(reader)
            )
            assert direct.status_code == 403, direct.text
            around = await client.post(
                "/api/generate/status/DOT/async", json={"prompt": "x"}, headers=bearer(reader)
            )
            assert around.status_code == 400, around.text
            assert around.json()["error"]["details"] == {"field": "path"}
            escaped = await client.get(
                "/api/generate/async/%2e%2e/%2e%2e/jobs", headers=bearer(maker)
            )
            listing = await client.get("/api/generate/async/DOT/DOT/jobs", headers=bearer(maker))
            assert listing.status_code == 400, listing.text
            assert escaped.status_code in (400, 404), escaped.text
            # Nothing was queued by the refused request.
            jobs = await client.get("/api/jobs", headers=bearer(root))
            assert jobs.json()["jobs"] == []


def test_every_service_prefix_has_a_class_of_its_own() -> None:
    """A prefix the table does not know would be `other`: reachable by any key."""
    unclassified = [
        prefix
        for spec in SERVICES
        for prefix in spec.prefixes
        if classify(prefix) is RouteClass.OTHER
    ]
    assert unclassified == []
