"""The outbound client: the calls the server makes to outside URLs are pinned to checked
addresses, capped in size and time, follow redirects only to checked addresses, and carry
the trace and a User-Agent. (The address rules themselves: tests/jobs/test_webhook_ssrf.py.)"""

from __future__ import annotations

import asyncio
import ipaddress

import httpx
import pytest

from easel import __version__
from easel.core.address_guard import IPAddress, UrlRefused
from easel.core.outbound import (
    OutboundClient,
    OutboundLimits,
    OutboundTimeout,
    ResponseTooLarge,
    TooManyRedirects,
)
from easel.core.tracing import TraceContext, traced

PUBLIC = ipaddress.ip_address("93.184.216.34")
OTHER_PUBLIC = ipaddress.ip_address("93.184.216.35")
NAMES: dict[str, IPAddress] = {
    "hooks.example.com": PUBLIC,
    "cdn.example.com": OTHER_PUBLIC,
    "inside.example.com": ipaddress.ip_address("10.0.0.7"),
}


class Names:
    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        return [NAMES[host]]


def client_of(handler, **options) -> OutboundClient:  # type: ignore[no-untyped-def]
    transport = httpx.MockTransport(handler)
    return OutboundClient(httpx.AsyncClient(transport=transport), resolver=Names(), **options)


async def test_a_call_goes_to_the_checked_address_with_trace_and_user_agent() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"ok")

    span = TraceContext.new()
    with traced(span):
        response = await client_of(answer).request("GET", "http://hooks.example.com/x")
    assert response.is_success and response.content == b"ok"
    (request,) = seen
    assert request.url == httpx.URL(f"http://{PUBLIC}/x")
    assert request.headers["host"] == "hooks.example.com"
    assert request.headers["user-agent"] == f"easel/{__version__}"
    assert request.headers["traceparent"] == span.traceparent


async def test_a_response_over_the_cap_fails_the_call() -> None:
    big = httpx.Response(200, content=b"x" * 2048)
    client = client_of(lambda _: big, limits=OutboundLimits(max_response_bytes=1024))
    with pytest.raises(ResponseTooLarge):
        await client.request("GET", "http://hooks.example.com/")
    # A call may ask for less than the limit, never for more.
    small = client_of(lambda _: httpx.Response(200, content=b"x" * 200))
    with pytest.raises(ResponseTooLarge):
        await small.request("GET", "http://hooks.example.com/", max_response_bytes=100)


async def test_the_whole_call_is_bounded_in_time() -> None:
    class Slow(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(30)
            return httpx.Response(200)

    client = OutboundClient(
        httpx.AsyncClient(transport=Slow()),
        resolver=Names(),
        limits=OutboundLimits(timeout_s=0.2),
    )
    with pytest.raises(OutboundTimeout):
        await client.request("GET", "http://hooks.example.com/", timeout_s=60)  # capped


def redirecting(location: str, status: int = 302):  # type: ignore[no-untyped-def]
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == str(PUBLIC):
            return httpx.Response(status, headers={"location": location})
        return httpx.Response(200, content=b"moved here")

    return answer, seen


async def test_redirects_are_followed_only_when_asked_and_only_to_checked_addresses() -> None:
    answer, seen = redirecting("http://cdn.example.com/image.png")
    client = client_of(answer)
    not_followed = await client.request("GET", "http://hooks.example.com/")
    assert not_followed.status_code == 302 and len(seen) == 1
    followed = await client.request("GET", "http://hooks.example.com/", max_redirects=3)
    assert followed.content == b"moved here"
    assert followed.url == httpx.URL("http://cdn.example.com/image.png")
    assert seen[-1].url == httpx.URL(f"http://{OTHER_PUBLIC}/image.png")
    assert seen[-1].headers["host"] == "cdn.example.com"
    for location in ("http://inside.example.com/", "http://127.0.0.1:9/", "file:///etc/passwd"):
        answer, seen = redirecting(location)
        with pytest.raises(UrlRefused):
            await client_of(answer).request("GET", "http://hooks.example.com/", max_redirects=3)
        assert len(seen) == 1  # the refused hop is never sent


async def test_a_post_redirected_by_303_becomes_a_get_and_307_keeps_it() -> None:
    for status, method, body in ((303, "GET", b""), (307, "POST", b"payload")):
        answer, seen = redirecting("http://cdn.example.com/next", status)
        client = client_of(answer)
        await client.request(
            "POST", "http://hooks.example.com/", content=b"payload", max_redirects=1
        )
        assert seen[-1].method == method and seen[-1].content == body


async def test_redirect_loops_end() -> None:
    answer, _ = redirecting("http://hooks.example.com/again")
    with pytest.raises(TooManyRedirects):
        await client_of(answer).request("GET", "http://hooks.example.com/", max_redirects=2)


async def test_refused_urls_name_why() -> None:
    client = client_of(lambda _: httpx.Response(200))
    with pytest.raises(UrlRefused, match="http:// or https://"):
        await client.check("ftp://hooks.example.com/")
    with pytest.raises(UrlRefused) as refused:
        await client.request("GET", "http://inside.example.com/")
    assert refused.value.non_public
    allowed = client_of(lambda _: httpx.Response(200), allow_private=True)
    assert (await allowed.request("GET", "http://inside.example.com/")).is_success
