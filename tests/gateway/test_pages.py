"""The gateway's pages: the playground at `/` and its files under `/static`, and the API
pages' assets, public even with keys on and never rate limited (they hold no data);
EASEL_PLAYGROUND=false leaves the playground out; the API pages stay keyed as configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from easel.gateway.route_classes import RouteClass, classify
from tests.gateway.keys_support import bearer, clear_easel_env, gateway_client, settings_for


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_easel_env(monkeypatch, tmp_path)


def test_the_pages_are_their_own_route_class() -> None:
    for path in ("/", "/static/easel.js", "/static/docs/swagger-ui.css"):
        assert classify(path) is RouteClass.PAGE, path
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert classify(path) is RouteClass.SYSTEM, path
    assert classify("/statics") is RouteClass.OTHER
    assert classify("/api/models") is RouteClass.GENERATE


async def test_with_keys_on_the_pages_need_no_key(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, api_keys="page-test-key", rate_limit_other=1)
    async with gateway_client(settings) as client:
        for _ in range(3):  # never counted against a limit
            page = await client.get("/")
            assert page.status_code == 200, page.text
            assert page.headers["content-type"].startswith("text/html")
            script = await client.get("/static/easel.js")
            assert script.status_code == 200, script.text
            assert "javascript" in script.headers["content-type"]
            css = await client.get("/static/docs/swagger-ui.css")
            assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert (await client.get("/static/no-such-file.js")).status_code == 404
        # The API itself still needs the key the page asks for.
        assert (await client.get("/api/models")).status_code == 401
        assert (await client.get("/api/models", headers=bearer("page-test-key"))).status_code == 200


async def test_the_api_pages_follow_public_docs(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, api_keys="page-test-key", public_docs=False)
    async with gateway_client(settings) as client:
        for path in ("/docs", "/redoc"):
            assert (await client.get(path)).status_code == 401, path
            keyed = await client.get(path, headers=bearer("page-test-key"))
            assert keyed.status_code == 200, path
        # Their assets are static files of a package: nothing to protect.
        script = await client.get("/static/docs/swagger-ui-bundle.js")
        assert script.status_code == 200


async def test_the_playground_can_be_turned_off(tmp_path: Path) -> None:
    async with gateway_client(settings_for(tmp_path, playground=False)) as client:
        page = await client.get("/")
        assert page.status_code == 404
        assert page.json()["error"]["code"] == "not_found"
        assert (await client.get("/static/easel.js")).status_code == 404
        assert (await client.get("/docs")).status_code == 200  # the API pages stay
        assert (await client.get("/static/docs/redoc.standalone.js")).status_code == 200
