"""The API pages render with no network (issue 19, item 2): Chromium opens `/docs` and
`/redoc` of the all-in-one server with every request to another host refused, and each
shows every operation of the public API document; the assets come from this server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route

from tests.support.browser import chromium
from tests.support.servers import ServerProcess, start_server

LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}
RENDER_TIMEOUT_MS = 120_000
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts" / "docs"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"EASEL_JOBS_IN_PROCESS_WORKER": "false", "EASEL_GENERATION_LOAD": "lazy"}
    process = start_server("all", tmp_path_factory.mktemp("docs"), env=env)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


class Offline:
    """Every request the page makes; any to another host is refused, and remembered."""

    def __init__(self, page: Page) -> None:
        self.requested: list[str] = []
        self.refused: list[str] = []
        page.route("**/*", self._route)

    def _route(self, route: Route) -> None:
        url = route.request.url
        self.requested.append(url)
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or parts.hostname in LOOPBACK:
            route.continue_()
        else:
            self.refused.append(url)
            route.abort("internetdisconnected")


def operations(server: ServerProcess) -> list[dict[str, str]]:
    document = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    return [
        {"path": path, "method": method, "id": operation["operationId"]}
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def schema_names(server: ServerProcess) -> list[str]:
    document = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    return sorted(document["components"]["schemas"])


@contextmanager
def offline_page(browser: Browser, url: str, script: str) -> Iterator[Page]:
    """`url` opened with every other host refused; on the way out, a screenshot, and
    checks that nothing went elsewhere and that `script` came from this server."""
    page = browser.new_page()
    offline = Offline(page)
    page.goto(url)
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{url.rsplit('/', 1)[1]}.png"))
    assert offline.refused == []
    assert any(request.endswith(f"/static/docs/{script}") for request in offline.requested)
    page.close()


def test_swagger_ui_shows_every_operation_offline(browser: Browser, server: ServerProcess) -> None:
    expected = operations(server)
    with offline_page(browser, f"{server.url}/docs", "swagger-ui-bundle.js") as page:
        blocks = page.locator(".opblock")
        blocks.first.wait_for(timeout=RENDER_TIMEOUT_MS)
        assert blocks.count() == len(expected)
        for operation in expected:
            selector = f".opblock-{operation['method']} [data-path='{operation['path']}']"
            assert page.locator(selector).count() >= 1, operation
        # A request example and the schemas are there too, not only the list.
        page.locator(".opblock-post").first.click()
        body = page.locator(".opblock-body").first
        body.wait_for(timeout=RENDER_TIMEOUT_MS)
        assert '"images"' in body.inner_text()  # the response's example
        assert '"prompt"' in body.locator("textarea.body-param__text").input_value()
        schemas = page.locator("section.models").inner_text()
        for name in schema_names(server):
            assert name in schemas, name


def test_redoc_shows_every_operation_offline(browser: Browser, server: ServerProcess) -> None:
    expected = {operation["id"] for operation in operations(server)}
    with offline_page(browser, f"{server.url}/redoc", "redoc.standalone.js") as page:
        sections = page.locator("[data-section-id*='operation/']")
        sections.first.wait_for(timeout=RENDER_TIMEOUT_MS)
        shown = {str(s.get_attribute("data-section-id")).rsplit("/", 1)[1] for s in sections.all()}
        assert shown == expected


def test_the_pages_name_no_other_host(server: ServerProcess) -> None:
    for path in ("/docs", "/redoc"):
        html = httpx.get(f"{server.url}{path}", timeout=30).text
        assert "cdn." not in html and "fonts.googleapis" not in html, path
        assert "https://" not in html and "http://" not in html, path
