"""The gateway's client of a remote service keeps no cookies: a Set-Cookie is the client's."""

from __future__ import annotations

import httpx
import pytest

from easel.compose.settings import EaselSettings
from easel.gateway.upstream import UpstreamClient, build_client


async def test_a_services_cookie_is_passed_on_not_kept_for_the_next_request() -> None:
    cookies_sent: list[str | None] = []

    def service(request: httpx.Request) -> httpx.Response:
        cookies_sent.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "session=alice; Path=/"})

    async with UpstreamClient(
        transport=httpx.MockTransport(service), base_url="http://service"
    ) as http:
        first = await http.get("/api/x")
        await http.get("/api/x")
        await http.get("/api/x", headers={"cookie": "session=bob"})
    assert first.headers["set-cookie"] == "session=alice; Path=/"  # for the client it answers
    # Nobody else's request carries it (httpx's own client would send it on with the
    # next); a client's own cookie header goes on as it was.
    assert cookies_sent == [None, None, "session=bob"]
    assert len(http.cookies) == 0
    with pytest.raises(AttributeError):
        http.cookies = {"a": "b"}


async def test_remote_services_get_the_cookieless_client() -> None:
    settings = EaselSettings.load(image_utils_url="http://127.0.0.1:1")
    endpoint = settings.topology.endpoint("image_utils", default_timeout=5)
    async with build_client(endpoint, settings.gateway, None) as http:
        assert isinstance(http, UpstreamClient)
